# Tests for the opa-envoy-plugin example policy.
# Run: opa test -v examples/policies/opa-envoy-plugin
package claimcheck.examples.opa_envoy_plugin_test

import data.claimcheck.examples.opa_envoy_plugin as policy

# envoy_input is the input opa-envoy-plugin (and claimcheck) builds for a
# request: input.attributes with protojson field names, and input.parsed_path
# and input.parsed_query.
envoy_input(method, path, headers, principal) := {
	"attributes": {
		"source": {
			"address": {"socketAddress": {"address": "10.0.0.7", "portValue": 50000}},
			"principal": principal,
		},
		"destination": {"address": {"socketAddress": {"address": "10.0.0.9", "portValue": 8080}}},
		"request": {"http": {
			"id": "367a78b51cece960",
			"method": method,
			"path": path,
			"host": "shop.example",
			"scheme": "https",
			"protocol": "HTTP/1.1",
			"headers": object.union({":authority": "shop.example", ":method": method, ":path": path}, headers),
		}},
	},
	"parsed_path": split(trim_left(split(path, "?")[0], "/"), "/"),
	"parsed_query": {},
	"version": {"encoding": "protojson", "ext_authz": "v3"},
}

get(path) := envoy_input("GET", path, {}, "")

allowed := {"allowed": true, "headers": {"x-ext-auth-allow": "yes"}}

forbidden := {
	"allowed": false,
	"http_status": 403,
	"headers": {"content-type": "application/json"},
	"body": `{"error":"forbidden","error_description":"the policy does not allow this request"}`,
}

# --- /public -------------------------------------------------------------------

test_public_reads if {
	policy.result == allowed with input as get("/public")
	policy.result == allowed with input as get("/public/css/site.css")
	policy.result == allowed with input as envoy_input("HEAD", "/public/logo.png", {}, "")
}

test_public_with_query_string if {
	# http.path carries the query; parsed_path does not.
	policy.result == allowed with input as get("/public/search?q=shoes&page=2")
}

test_public_writes_are_forbidden if {
	policy.result == forbidden with input as envoy_input("POST", "/public/upload", {}, "")
	policy.result == forbidden with input as envoy_input("DELETE", "/public", {}, "")
}

test_public_is_a_whole_segment if {
	policy.result == allowed with input as get("/public")
	policy.result == allowed with input as get("/public/42")
	policy.result == forbidden with input as get("/publicadmin")
	policy.result == forbidden with input as get("/publicadmin/42")
	policy.result == forbidden with input as get("/publicity")
	policy.result == forbidden with input as get("/api/public")
	policy.result == forbidden with input as get("/Public/x")
	policy.result == forbidden with input as get("/")
}

test_method_is_case_sensitive if {
	policy.result == forbidden with input as envoy_input("get", "/public", {}, "")
}

test_dot_segments_leave_public if {
	policy.result == forbidden with input as get("/public/../admin")
	policy.result == forbidden with input as get("/public/./x")

	# "..;" is ".." to servers that strip ";…".
	policy.result == forbidden with input as get("/public/..;/admin")
	policy.result == forbidden with input as get("/public/..;jsessionid=1/admin")
	policy.result == allowed with input as get("/public/logo.png;v=2")
}

test_encoded_separators_leave_public if {
	# parsed_path is percent-decoded: an upstream may decode %2F and %5C too.
	doc := object.union(get("/public/..%2Fadmin"), {"parsed_path": ["public", "../admin"]})
	policy.result == forbidden with input as doc
	doc2 := object.union(get("/public/..%5Cadmin"), {"parsed_path": ["public", "..\\admin"]})
	policy.result == forbidden with input as doc2
	doc3 := object.union(get("/public/a%2Fb"), {"parsed_path": ["public", "a/b"]})
	policy.result == forbidden with input as doc3
}

test_private_paths_are_forbidden if {
	policy.result == forbidden with input as get("/admin")
	policy.result == forbidden with input as get("/api/orders")
}

# --- x-api-role ----------------------------------------------------------------

test_admin_role_header if {
	policy.result == allowed with input as envoy_input("DELETE", "/admin/users/7", {"x-api-role": "admin"}, "")
	policy.result == allowed with input as envoy_input("GET", "/", {"x-api-role": "admin"}, "")
}

test_other_roles if {
	policy.result == forbidden with input as envoy_input("DELETE", "/admin", {"x-api-role": "user"}, "")
	policy.result == forbidden with input as envoy_input("DELETE", "/admin", {"x-api-role": ""}, "")
}

test_role_value_is_exact if {
	policy.result == forbidden with input as envoy_input("GET", "/admin", {"x-api-role": "Admin"}, "")
	policy.result == forbidden with input as envoy_input("GET", "/admin", {"x-api-role": "admin "}, "")
	policy.result == forbidden with input as envoy_input("GET", "/admin", {"x-api-role": "admin,user"}, "")
}

test_header_names_are_lower_case if {
	# Envoy lower-cases header names; a mixed-case key never arrives.
	policy.result == forbidden with input as envoy_input("GET", "/admin", {"X-Api-Role": "admin"}, "")
}

# --- mTLS principal ------------------------------------------------------------

test_checkout_service_creates_orders if {
	policy.result == allowed with input as envoy_input("POST", "/api/orders", {}, "spiffe://cluster.local/ns/shop/sa/checkout")
}

test_checkout_service_only_creates_orders if {
	policy.result == forbidden with input as envoy_input("GET", "/api/orders", {}, "spiffe://cluster.local/ns/shop/sa/checkout")
	policy.result == forbidden with input as envoy_input("POST", "/api/orders/1", {}, "spiffe://cluster.local/ns/shop/sa/checkout")
	policy.result == forbidden with input as envoy_input("POST", "/api/orders/", {}, "spiffe://cluster.local/ns/shop/sa/checkout")
	policy.result == forbidden with input as envoy_input("POST", "/api/ordersadmin", {}, "spiffe://cluster.local/ns/shop/sa/checkout")
}

test_other_principals if {
	policy.result == forbidden with input as envoy_input("POST", "/api/orders", {}, "spiffe://cluster.local/ns/shop/sa/cart")
	policy.result == forbidden with input as envoy_input("POST", "/api/orders", {}, "")
}

test_no_principal_at_all if {
	# protojson omits empty fields: without mTLS, source has no principal.
	doc := json.patch(envoy_input("POST", "/api/orders", {}, ""), [{"op": "remove", "path": "/attributes/source/principal"}])
	policy.result == forbidden with input as doc
}

# --- only input.attributes counts --------------------------------------------------

test_claimcheck_fields_are_not_read if {
	# Under claimcheck the input also has token and request; the policy
	# decides from attributes alone, exactly as under opa-envoy-plugin.
	doc := object.union(envoy_input("POST", "/admin", {}, ""), {
		"token": {"claims": {"sub": "svc", "role": "admin"}, "scopes": ["admin"]},
		"request": {"method": "GET", "path": "/public", "headers": {"x-api-role": "admin"}},
		"context_extensions": {},
	})
	policy.result == forbidden with input as doc
}

test_result_is_always_defined if {
	policy.result == forbidden with input as {}
	policy.result == forbidden with input as {"attributes": {"request": {"http": {}}}}
}

test_boolean_allow if {
	policy.allow with input as get("/public")
	not policy.allow with input as get("/admin")
}
