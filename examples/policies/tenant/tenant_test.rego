# Tests for the tenant example policy.
# Run: opa test -v examples/policies/tenant
package claimcheck.examples.tenant_test

import data.claimcheck.examples.tenant as policy

# The shipped data.json. claimcheck (policy.paths: [examples/policies/tenant])
# and `opa test examples/policies/tenant` load it at the root of data;
# `opa test examples/policies` loads it under data.tenant. The tests pin it at
# data.tenant either way.
shipped := data.tenant.tenant if {
	data.tenant.tenant
} else := data.tenant

# decision is the policy's object decision for input doc with the shipped
# data; decide(doc, config) with other data.
decision(doc) := decide(doc, shipped)

decide(doc, config) := result if {
	result := policy.decision with input as doc with data.tenant as config
}

allowed(doc) := result if {
	result := policy.allow with input as doc with data.tenant as shipped
}

# request is the input claimcheck builds for a verified token with these
# claims calling method path (only the fields this policy reads).
request(claims, method, path) := {
	"token": {"claims": claims},
	"request": {"method": method, "path": path, "headers": {}},
	"parsed_path": split(trim_left(path, "/"), "/"),
}

of_tenant(tenant, method, path) := request({"sub": "alice", "tenant": tenant}, method, path)

with_parsed_path(doc, segments) := object.union(doc, {"parsed_path": segments})

deny := {"allowed": false}

test_shipped_data_is_loaded if {
	shipped.support_clients
	shipped.id_pattern
}

# --- members -------------------------------------------------------------------

test_member_of_the_tenant if {
	decision(of_tenant("acme", "GET", "/tenants/acme/orders")) == {
		"allowed": true,
		"headers": {"x-tenant": "acme"},
		"dynamic_metadata": {"tenant": "acme", "access": "member"},
	}
	decision(of_tenant("acme", "DELETE", "/tenants/acme/orders/7")).allowed
	decision(of_tenant("acme", "GET", "/tenants/acme")).allowed
	decision(of_tenant("acme", "GET", "/tenants/acme/")).allowed
}

test_boolean_allow_agrees if {
	allowed(of_tenant("acme", "GET", "/tenants/acme/orders")) == true
	allowed(of_tenant("acme", "GET", "/tenants/globex/orders")) == false
}

test_x_tenant_from_the_client_is_replaced if {
	doc := object.union(of_tenant("acme", "GET", "/tenants/acme/orders"), {"request": {"headers": {"x-tenant": "globex"}}})
	decision(doc).headers == {"x-tenant": "acme"}
}

test_other_tenant if {
	decision(of_tenant("acme", "GET", "/tenants/globex/orders")) == deny
	decision(of_tenant("acme", "POST", "/tenants/globex")) == deny
}

test_tenants_are_case_sensitive if {
	decision(of_tenant("acme", "GET", "/tenants/ACME/orders")) == deny
	decision(of_tenant("Acme", "GET", "/tenants/acme/orders")) == deny
	decision(of_tenant("Acme", "GET", "/tenants/Acme/orders")).headers == {"x-tenant": "Acme"}
	decision(of_tenant("acme", "GET", "/Tenants/acme/orders")) == deny
}

test_percent_encoded_tenant_segment_is_decoded if {
	# /tenants/ac%6De/orders: claimcheck decodes parsed_path segments.
	doc := with_parsed_path(of_tenant("acme", "GET", "/tenants/ac%6De/orders"), ["tenants", "acme", "orders"])
	decision(doc).headers == {"x-tenant": "acme"}
}

# --- paths outside a tenant ----------------------------------------------------

test_tenant_prefix_is_matched_by_whole_segments if {
	decision(of_tenant("acme", "GET", "/tenants/acme")).allowed
	decision(of_tenant("acme", "GET", "/tenants/acme/orders")).allowed
	decision(of_tenant("acme", "GET", "/tenantsacme")) == deny
	decision(of_tenant("acme", "GET", "/tenantsx/acme")) == deny
	decision(of_tenant("acme", "GET", "/tenants/acmeglobex/orders")) == deny
	decision(request({"client_id": "support-console"}, "GET", "/tenantsadmin/acme")) == deny
}

test_paths_outside_tenants if {
	decision(of_tenant("acme", "GET", "/")) == deny
	decision(of_tenant("acme", "GET", "/orders")) == deny
	decision(of_tenant("acme", "GET", "/tenants")) == deny
	decision(of_tenant("acme", "GET", "/api/tenants/acme")) == deny
}

test_empty_tenant_segment if {
	decision(of_tenant("", "GET", "/tenants/")) == deny
	decision(of_tenant("", "GET", "/tenants//orders")) == deny
}

test_tenant_segment_must_be_a_tenant_id if {
	doc := with_parsed_path(of_tenant("acme\r\nx-evil: 1", "GET", "/tenants/acme%0D%0Ax-evil:%201"), ["tenants", "acme\r\nx-evil: 1"])
	decision(doc) == deny
	decision(of_tenant("-acme", "GET", "/tenants/-acme")) == deny
	decision(of_tenant("a.b", "GET", "/tenants/a.b")) == deny
}

test_dot_segments_cannot_cross_tenants if {
	doc := with_parsed_path(of_tenant("acme", "GET", "/tenants/acme/../globex/orders"), ["tenants", "acme", "..", "globex", "orders"])
	decision(doc) == deny
	doc2 := with_parsed_path(of_tenant("acme", "GET", "/tenants/acme/..%2F..%2Fglobex"), ["tenants", "acme", "../../globex"])
	decision(doc2) == deny
	doc3 := with_parsed_path(of_tenant("acme", "GET", "/tenants/acme/./orders"), ["tenants", "acme", ".", "orders"])
	decision(doc3) == deny
}

test_dot_segments_with_path_parameters_cannot_cross_tenants if {
	# "..;" is ".." to servers that strip ";…": this is /tenants/globex/orders.
	decision(of_tenant("acme", "GET", "/tenants/acme/..;/globex/orders")) == deny
	decision(of_tenant("acme", "GET", "/tenants/acme/..;jsessionid=1/globex")) == deny
	decision(of_tenant("acme", "GET", "/tenants/acme/.;/orders")) == deny
	decision(of_tenant("acme", "GET", "/tenants/acme/orders;v=2")).allowed
}

test_encoded_slash_in_the_tenant_segment if {
	doc := with_parsed_path(of_tenant("acme/../globex", "GET", "/tenants/acme%2F..%2Fglobex"), ["tenants", "acme/../globex"])
	decision(doc) == deny
}

# --- missing claims, wrong types ----------------------------------------------

test_no_token if {
	decision({"request": {"method": "GET", "path": "/tenants/acme"}, "parsed_path": ["tenants", "acme"]}) == deny
}

test_no_tenant_claim if {
	decision(request({"sub": "alice"}, "GET", "/tenants/acme")) == deny
}

test_tenant_claim_of_the_wrong_type if {
	decision(of_tenant(42, "GET", "/tenants/42")) == deny
	decision(of_tenant(["acme"], "GET", "/tenants/acme")) == deny
	decision(of_tenant(["acme", "globex"], "GET", "/tenants/globex")) == deny
	decision(of_tenant({"id": "acme"}, "GET", "/tenants/acme")) == deny
	decision(of_tenant(null, "GET", "/tenants/acme")) == deny
	decision(of_tenant(true, "GET", "/tenants/true")) == deny
}

test_numeric_tenant_as_a_string if {
	decision(of_tenant("42", "GET", "/tenants/42")).headers == {"x-tenant": "42"}
}

# --- support clients -------------------------------------------------------------

test_support_client_reads_any_tenant if {
	doc := request({"client_id": "support-console", "sub": "support-console"}, "GET", "/tenants/globex/orders")
	decision(doc) == {
		"allowed": true,
		"headers": {"x-tenant": "globex"},
		"dynamic_metadata": {"tenant": "globex", "access": "support"},
	}
	decision(request({"client_id": "support-console"}, "HEAD", "/tenants/acme")).allowed
}

test_support_client_may_not_write if {
	decision(request({"client_id": "support-console"}, "POST", "/tenants/globex/orders")) == deny
	decision(request({"client_id": "support-console"}, "DELETE", "/tenants/globex")) == deny
}

test_support_client_only_under_tenants if {
	decision(request({"client_id": "support-console"}, "GET", "/tenants")) == deny
	decision(request({"client_id": "support-console"}, "GET", "/admin")) == deny
	doc := with_parsed_path(request({"client_id": "support-console"}, "GET", "/tenants/acme/../../admin"), ["tenants", "acme", "..", "..", "admin"])
	decision(doc) == deny
}

test_support_client_id_is_exact if {
	decision(request({"client_id": "Support-Console"}, "GET", "/tenants/acme")) == deny
	decision(request({"client_id": ["support-console"]}, "GET", "/tenants/acme")) == deny
	decision(request({"sub": "support-console"}, "GET", "/tenants/acme")) == deny
}

test_member_of_own_tenant_who_is_also_support if {
	doc := request({"client_id": "support-console", "tenant": "acme"}, "POST", "/tenants/acme/orders")
	decision(doc).dynamic_metadata.access == "member"
}

test_support_clients_come_from_data if {
	config := object.union(shipped, {"support_clients": ["helpdesk"], "support_methods": ["GET"]})
	decide(request({"client_id": "helpdesk"}, "GET", "/tenants/acme"), config).allowed
	decide(request({"client_id": "support-console"}, "GET", "/tenants/acme"), config) == deny
	decide(request({"client_id": "helpdesk"}, "HEAD", "/tenants/acme"), config) == deny
}
