# Tests for the scopes example policy.
# Run: opa test -v examples/policies/scopes
package claimcheck.examples.scopes_test

import data.claimcheck.examples.scopes as policy

# The shipped data.json. claimcheck (policy.paths: [examples/policies/scopes])
# and `opa test examples/policies/scopes` load it at the root of data;
# `opa test examples/policies` loads it under data.scopes. The tests pin it at
# data.scopes either way.
shipped := data.scopes.scopes if {
	data.scopes.scopes
} else := data.scopes

# decision is the policy's object decision for input doc with the shipped
# routes; decide(doc, routes) with another route table.
decision(doc) := decide(doc, shipped.routes)

decide(doc, routes) := result if {
	result := policy.decision with input as doc with data.scopes as {"routes": routes}
}

allowed(doc) := result if {
	result := policy.allow with input as doc with data.scopes as shipped
}

# call is the input claimcheck builds for a verified token with these scopes
# calling method path (only the fields this policy reads).
call(scopes, method, path) := {
	"token": {"claims": {"sub": "svc", "scope": concat(" ", scopes)}, "scopes": scopes},
	"request": {"method": method, "path": path},
	"parsed_path": split(trim_left(path, "/"), "/"),
}

anonymous(method, path) := {
	"request": {"method": method, "path": path},
	"parsed_path": split(trim_left(path, "/"), "/"),
}

# with_parsed_path replaces the parsed path, for paths with escapes.
with_parsed_path(doc, segments) := object.union(doc, {"parsed_path": segments})

status(d) := d.http_status

challenge(d) := d.headers["www-authenticate"]

error_of(d) := json.unmarshal(d.body).error

test_shipped_data_is_loaded if {
	count(shipped.routes) > 0
	shipped.routes["GET /orders/{id}"]
}

# --- allowed -----------------------------------------------------------------

test_one_of_the_route_scopes_is_enough if {
	decision(call(["orders:read"], "GET", "/orders")) == {"allowed": true, "dynamic_metadata": {"route": "GET /orders"}}
	decision(call(["orders:admin"], "GET", "/orders")).allowed
	decision(call(["profile", "orders:write"], "POST", "/orders")).allowed
}

test_boolean_allow_agrees if {
	allowed(call(["orders:read"], "GET", "/orders/42")) == true
	allowed(call(["orders:write"], "GET", "/orders/42")) == false
	allowed(anonymous("GET", "/orders")) == false
}

test_path_variable if {
	decision(call(["orders:read"], "GET", "/orders/42")) == {"allowed": true, "dynamic_metadata": {"route": "GET /orders/{id}"}}
	decision(call(["orders:read"], "GET", "/orders/42/items")).allowed
}

test_percent_decoded_segment_fills_a_variable if {
	decision(with_parsed_path(call(["orders:read"], "GET", "/orders/a%20b"), ["orders", "a b"])).allowed
}

test_greedy_variable if {
	decision(call(["reports:read"], "GET", "/reports/2024")).allowed
	decision(call(["reports:read"], "GET", "/reports/2024/q1/summary")).dynamic_metadata.route == "GET /reports/{proxy+}"
}

test_route_without_scopes_needs_none if {
	decision(call([], "GET", "/health")).allowed
}

test_route_without_scopes_allows_a_call_without_token if {
	# Reachable only with token.required: false.
	decision(anonymous("GET", "/health")).allowed
}

# --- the most specific route decides -----------------------------------------

test_named_method_beats_any if {
	decision(call(["orders:read"], "GET", "/orders/42")).allowed
	d := decision(call(["orders:read"], "DELETE", "/orders/42"))
	status(d) == 403
	d.dynamic_metadata.route == "ANY /orders/{id}"
	decision(call(["orders:admin"], "DELETE", "/orders/42")).allowed
	decision(call(["orders:admin"], "PATCH", "/orders/42")).allowed
}

test_longer_literal_prefix_beats_greedy if {
	# /reports/{proxy+} would let reports:read in; the finance route wins.
	d := decision(call(["reports:read"], "GET", "/reports/finance/q1"))
	status(d) == 403
	challenge(d) == `Bearer error="insufficient_scope", scope="finance:read"`
	decision(call(["finance:read"], "GET", "/reports/finance/q1")).allowed
	decision(call(["finance:read"], "GET", "/reports/hr/q1")).allowed == false
}

test_literal_beats_variable if {
	routes := {"GET /orders/{id}": ["orders:read"], "GET /orders/export": ["orders:export"]}
	decide(call(["orders:read"], "GET", "/orders/export"), routes).allowed == false
	decide(call(["orders:export"], "GET", "/orders/export"), routes).allowed
	decide(call(["orders:read"], "GET", "/orders/7"), routes).allowed
}

test_variable_beats_greedy if {
	routes := {"ANY /{proxy+}": ["admin"], "GET /orders/{id}": ["orders:read"]}
	decide(call(["orders:read"], "GET", "/orders/7"), routes).allowed
	decide(call(["orders:read"], "GET", "/orders/7/items"), routes).allowed == false
	decide(call(["admin"], "GET", "/orders/7/items"), routes).allowed
}

test_duplicate_routes_must_all_be_satisfied if {
	routes := {"GET /orders/{id}": ["a"], "GET /orders/{orderId}": ["b"]}
	d := decide(call(["a"], "GET", "/orders/1"), routes)
	status(d) == 403
	challenge(d) == `Bearer error="insufficient_scope", scope="b"`
	d.dynamic_metadata.route == "GET /orders/{id} | GET /orders/{orderId}"
	decide(call(["a", "b"], "GET", "/orders/1"), routes).allowed
}

test_default_route if {
	routes := {"GET /orders": ["orders:read"], "$default": ["admin"]}
	decide(call(["admin"], "GET", "/anything/else"), routes) == {"allowed": true, "dynamic_metadata": {"route": "$default"}}
	d := decide(call(["orders:read"], "POST", "/orders"), routes)
	status(d) == 403
	d.dynamic_metadata.route == "$default"
	decide(call(["orders:read"], "GET", "/orders"), routes).allowed
}

test_root_route if {
	routes := {"GET /": []}
	decide(call([], "GET", "/"), routes).allowed
	status(decide(call([], "GET", "/x"), routes)) == 404
}

# --- insufficient scope: RFC 6750 §3.1 ---------------------------------------

test_insufficient_scope_response if {
	d := decision(call(["orders:write"], "GET", "/orders/42"))
	d.allowed == false
	d.http_status == 403
	d.headers == {
		"content-type": "application/json",
		"www-authenticate": `Bearer error="insufficient_scope", scope="orders:admin orders:read"`,
	}
	json.unmarshal(d.body) == {
		"error": "insufficient_scope",
		"error_description": "GET /orders/{id} requires one of the scopes: orders:admin, orders:read",
	}
	d.dynamic_metadata == {"route": "GET /orders/{id}"}
}

test_token_without_scopes if {
	doc := {"token": {"claims": {"sub": "svc"}}, "request": {"method": "GET", "path": "/orders"}, "parsed_path": ["orders"]}
	error_of(decision(doc)) == "insufficient_scope"
	error_of(decision(call([], "GET", "/orders"))) == "insufficient_scope"
}

test_scopes_are_case_sensitive if {
	error_of(decision(call(["Orders:Read", "ORDERS:READ"], "GET", "/orders"))) == "insufficient_scope"
}

test_scopes_of_the_wrong_type if {
	# A string is not searched for substrings; non-string items are ignored.
	base := call([], "GET", "/orders")
	error_of(decision(object.union(base, {"token": {"scopes": "orders:read"}}))) == "insufficient_scope"
	error_of(decision(object.union(base, {"token": {"scopes": [["orders:read"]]}}))) == "insufficient_scope"
	error_of(decision(object.union(base, {"token": {"scopes": {"orders:read": true}}}))) == "insufficient_scope"
	error_of(decision(object.union(base, {"token": {"scopes": null}}))) == "insufficient_scope"
}

test_scope_claim_alone_is_not_read if {
	# claimcheck parses scope/scp into input.token.scopes; the raw claim is not consulted.
	doc := {"token": {"claims": {"scope": "orders:read"}, "scopes": []}, "request": {"method": "GET", "path": "/orders"}, "parsed_path": ["orders"]}
	error_of(decision(doc)) == "insufficient_scope"
}

# --- no token: claimcheck asks for one ---------------------------------------

test_no_token_gets_a_plain_deny if {
	# No http_status, so claimcheck answers 401 missing_token with its own challenge.
	decision(anonymous("GET", "/orders")) == {"allowed": false}
	decision(anonymous("GET", "/no/such/route")) == {"allowed": false}
}

# --- no route: 404 ------------------------------------------------------------

test_no_route if {
	d := decision(call(["orders:admin"], "GET", "/customers"))
	d.http_status == 404
	d.headers == {"content-type": "application/json"}
	json.unmarshal(d.body) == {"error": "not_found", "error_description": "no route for GET /customers"}
	not d.dynamic_metadata
}

test_method_without_route if {
	status(decision(call(["orders:admin"], "DELETE", "/orders"))) == 404
}

test_methods_and_paths_are_case_sensitive if {
	status(decision(call(["orders:read"], "get", "/orders"))) == 404
	status(decision(call(["orders:read"], "GET", "/Orders"))) == 404
	status(decide(call([], "GET", "/orders"), {"get /orders": [], "any /orders": []})) == 404
}

test_variable_needs_a_non_empty_segment if {
	status(decision(call(["orders:read"], "GET", "/orders/"))) == 404
	status(decision(call(["orders:read"], "GET", "/orders//items"))) == 404
}

test_variable_is_one_segment if {
	status(decision(call(["orders:read"], "GET", "/orders/42/extra"))) == 404
}

test_greedy_needs_at_least_one_segment if {
	status(decision(call(["reports:read"], "GET", "/reports"))) == 404
	status(decision(call(["reports:read"], "GET", "/reports/"))) == 404
}

test_malformed_route_keys_never_match if {
	routes := {
		"GET  /x": [],
		"/x": [],
		"GET x": [],
		"GET /{proxy+}/x": [],
		"GET /x extra": [],
	}
	status(decide(call([], "GET", "/x"), routes)) == 404
	status(decide(call([], "GET", "/a/x"), routes)) == 404
}

test_unsafe_paths_match_no_route if {
	doc := with_parsed_path(call(["reports:read"], "GET", "/reports/x/../../orders"), ["reports", "x", "..", "..", "orders"])
	status(decision(doc)) == 404
	doc2 := with_parsed_path(call(["reports:read"], "GET", "/reports/..%2Forders"), ["reports", "../orders"])
	status(decision(doc2)) == 404
	doc3 := with_parsed_path(call(["reports:read"], "GET", "/reports/./q1"), ["reports", ".", "q1"])
	status(decision(doc3)) == 404
}

test_routes_match_whole_segments if {
	decision(call(["orders:read"], "GET", "/orders")).allowed
	decision(call(["orders:read"], "GET", "/orders/42")).allowed
	status(decision(call(["orders:read"], "GET", "/ordersadmin"))) == 404
	status(decision(call(["orders:read"], "GET", "/ordersadmin/42"))) == 404
	status(decision(call(["reports:read"], "GET", "/reportsadmin/2024"))) == 404
	status(decision(call(["orders:read"], "GET", "/healthz"))) == 404
}

test_dot_segments_with_path_parameters_match_no_route if {
	# Servers that strip ";…" read "..;" as "..": /orders/..;/items is /items.
	status(decision(call(["orders:read"], "GET", "/orders/..;/items"))) == 404
	status(decision(call(["reports:read"], "GET", "/reports/..;jsessionid=1/admin"))) == 404
	status(decision(call(["orders:read"], "GET", "/orders/.;"))) == 404
	decision(call(["orders:read"], "GET", "/orders/42;v=2")).allowed
}

test_unsafe_paths_skip_the_default_route if {
	doc := with_parsed_path(call(["admin"], "GET", "/a/../b"), ["a", "..", "b"])
	status(decide(doc, {"$default": ["admin"]})) == 404
}
