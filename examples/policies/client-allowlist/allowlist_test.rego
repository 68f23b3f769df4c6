# Tests for the client-allowlist example policy.
# Run: opa test -v examples/policies/client-allowlist
package claimcheck.examples.client_allowlist_test

import data.claimcheck.examples.client_allowlist as policy

# The shipped data.json. claimcheck (policy.paths: [examples/policies/client-allowlist])
# and `opa test examples/policies/client-allowlist` load it at the root of
# data; `opa test examples/policies` loads it under data["client-allowlist"].
# The tests pin it at data.client_allowlist either way.
shipped := data["client-allowlist"].client_allowlist if {
	data["client-allowlist"].client_allowlist
} else := data.client_allowlist

# decision is the policy's answer for input doc with the shipped data;
# decide(doc, config) with other data.
decision(doc) := decide(doc, shipped)

decide(doc, config) := result if {
	result := policy.allow with input as doc with data.client_allowlist as config
}

# request is the input claimcheck builds for a verified token with these
# claims calling method path (only the fields this policy reads).
request(claims, method, path) := {
	"token": {"claims": claims},
	"request": {"method": method, "path": path},
	"parsed_path": split(trim_left(path, "/"), "/"),
}

call(client_id, method, path) := request({"client_id": client_id, "sub": client_id}, method, path)

test_shipped_data_is_loaded if {
	count(shipped.clients) > 0
	shipped.clients["service-client-id"]
}

# --- allowed -----------------------------------------------------------------

test_client_on_its_prefix if {
	decision(call("service-client-id", "GET", "/orders")) == true
	decision(call("service-client-id", "GET", "/orders/42")) == true
	decision(call("service-client-id", "POST", "/orders")) == true
	decision(call("service-client-id", "GET", "/orders/42/items/7")) == true
}

test_client_with_several_prefixes if {
	decision(call("reporting-job", "GET", "/orders/42")) == true
	decision(call("reporting-job", "HEAD", "/invoices")) == true
	decision(call("billing-service", "PUT", "/payments/9")) == true
}

test_full_claimcheck_input if {
	decision({
		"token": {
			"issuer": "https://id.quickstart.example",
			"claims": {
				"aud": "orders-api",
				"client_id": "service-client-id",
				"iss": "https://id.quickstart.example",
				"scope": "orders:read orders:write",
				"sub": "service-client-id",
			},
			"header": {"alg": "ES256", "kid": "quickstart-dev-1", "typ": "at+jwt"},
			"scopes": ["orders:read", "orders:write"],
		},
		"request": {
			"method": "GET",
			"path": "/orders/42",
			"query": {"verbose": ["true"]},
			"headers": {":authority": "localhost", ":method": "GET", ":path": "/orders/42?verbose=true"},
			"host": "localhost",
			"scheme": "http",
			"protocol": "HTTP/1.1",
			"id": "367a78b51cece960",
		},
		"parsed_path": ["orders", "42"],
		"parsed_query": {"verbose": ["true"]},
	}) == true
}

test_query_string_is_not_part_of_the_path if {
	doc := object.union(call("service-client-id", "GET", "/orders"), {"parsed_query": {"next": ["/admin"]}})
	decision(doc) == true
}

# --- denied ------------------------------------------------------------------

test_unlisted_client if {
	decision(call("some-other-client", "GET", "/orders")) == false
}

test_method_not_granted if {
	decision(call("service-client-id", "DELETE", "/orders/42")) == false
	decision(call("reporting-job", "POST", "/orders")) == false
}

test_prefix_of_another_client if {
	decision(call("service-client-id", "GET", "/invoices/7")) == false
	decision(call("billing-service", "GET", "/orders")) == false
}

test_prefix_is_matched_by_whole_segments if {
	decision(call("service-client-id", "GET", "/orders")) == true
	decision(call("service-client-id", "GET", "/orders/42")) == true
	decision(call("service-client-id", "GET", "/ordersadmin")) == false
	decision(call("reporting-job", "GET", "/invoicesadmin")) == false
	decision(call("service-client-id", "GET", "/orders-archive")) == false
	decision(call("service-client-id", "GET", "/ordersx/1")) == false
	decision(call("service-client-id", "GET", "/")) == false
	decision(call("service-client-id", "GET", "/api/orders")) == false
}

test_comparisons_are_case_sensitive if {
	decision(call("Service-Client-Id", "GET", "/orders")) == false
	decision(call("service-client-id", "get", "/orders")) == false
	decision(call("service-client-id", "GET", "/Orders/42")) == false
}

test_no_token if {
	decision({"request": {"method": "GET", "path": "/orders"}, "parsed_path": ["orders"]}) == false
}

test_token_without_client_id if {
	decision(request({"sub": "service-client-id", "azp": "service-client-id"}, "GET", "/orders")) == false
}

test_client_id_of_the_wrong_type if {
	decision(request({"client_id": ["service-client-id"]}, "GET", "/orders")) == false
	decision(request({"client_id": {"id": "service-client-id"}}, "GET", "/orders")) == false
	decision(request({"client_id": null}, "GET", "/orders")) == false
	decision(request({"client_id": true}, "GET", "/orders")) == false
}

test_numeric_client_id_does_not_match_a_numeric_key if {
	grants := {"clients": {"42": {"methods": ["GET"], "path_prefixes": ["/orders"]}}}
	decide(request({"client_id": 42}, "GET", "/orders"), grants) == false
	decide(request({"client_id": "42"}, "GET", "/orders"), grants) == true
}

test_dot_segments_are_refused if {
	decision(object.union(call("service-client-id", "GET", "/orders/../admin"), {"parsed_path": ["orders", "..", "admin"]})) == false
	decision(object.union(call("service-client-id", "GET", "/orders/%2e%2e/admin"), {"parsed_path": ["orders", "..", "admin"]})) == false
	decision(object.union(call("service-client-id", "GET", "/orders/./42"), {"parsed_path": ["orders", ".", "42"]})) == false
}

test_dot_segments_with_path_parameters_are_refused if {
	# Servers that strip ";…" read "..;" as "..": /orders/..;/admin is /admin.
	decision(call("service-client-id", "GET", "/orders/..;/admin")) == false
	decision(call("service-client-id", "GET", "/orders/..;jsessionid=1/admin")) == false
	decision(call("service-client-id", "GET", "/orders/.;/42")) == false
	decision(object.union(call("service-client-id", "GET", "/orders/%2e%2e;/admin"), {"parsed_path": ["orders", "..;", "admin"]})) == false
	decision(call("service-client-id", "GET", "/orders/42;v=2")) == true
}

test_encoded_separators_are_refused if {
	decision(object.union(call("service-client-id", "GET", "/orders/..%2Fadmin"), {"parsed_path": ["orders", "../admin"]})) == false
	decision(object.union(call("service-client-id", "GET", "/orders/..%5Cadmin"), {"parsed_path": ["orders", "..\\admin"]})) == false
}

test_dots_inside_a_segment_are_fine if {
	decision(object.union(call("service-client-id", "GET", "/orders/42..43"), {"parsed_path": ["orders", "42..43"]})) == true
}

# --- the data drives it ------------------------------------------------------

test_allowlist_comes_from_data if {
	grants := {"clients": {"new-client": {"methods": ["PATCH"], "path_prefixes": ["/carts/"]}}}
	decide(call("new-client", "PATCH", "/carts"), grants) == true
	decide(call("new-client", "PATCH", "/carts/3"), grants) == true
	decide(call("new-client", "GET", "/carts/3"), grants) == false
	decide(call("service-client-id", "GET", "/orders"), grants) == false
}

test_root_prefix_covers_everything if {
	grants := {"clients": {"ops": {"methods": ["GET"], "path_prefixes": ["/"]}}}
	decide(call("ops", "GET", "/"), grants) == true
	decide(call("ops", "GET", "/anything/at/all"), grants) == true
}

test_client_with_no_methods_gets_nothing if {
	grants := {"clients": {"idle": {"methods": [], "path_prefixes": ["/"]}}}
	decide(call("idle", "GET", "/"), grants) == false
}
