# Tests for the rbac example policy.
# Run: opa test -v examples/policies/rbac
package claimcheck.examples.rbac_test

import data.claimcheck.examples.rbac as policy

# The shipped data.json. claimcheck (policy.paths: [examples/policies/rbac])
# and `opa test examples/policies/rbac` load it at the root of data;
# `opa test examples/policies` loads it under data.rbac. The tests pin it at
# data.rbac either way.
shipped := data.rbac.rbac if {
	data.rbac.rbac
} else := data.rbac

# decision is the policy's answer for input doc with the shipped data;
# decide(doc, config) with other data.
decision(doc) := decide(doc, shipped)

decide(doc, config) := result if {
	result := policy.allow with input as doc with data.rbac as config
}

# request is the input claimcheck builds for a verified token with these
# claims calling method path (only the fields this policy reads).
request(claims, method, path) := {
	"token": {"claims": claims},
	"request": {"method": method, "path": path},
	"parsed_path": split(trim_left(path, "/"), "/"),
}

as_roles(roles, method, path) := request({"sub": "alice", "roles": roles}, method, path)

as_groups(groups, method, path) := request({"sub": "alice", "groups": groups}, method, path)

test_shipped_data_is_loaded if {
	count(shipped.roles) > 0
	shipped.roles.reader
}

# --- roles claim ---------------------------------------------------------------

test_reader if {
	decision(as_roles(["reader"], "GET", "/orders")) == true
	decision(as_roles(["reader"], "GET", "/orders/42")) == true
	decision(as_roles(["reader"], "HEAD", "/orders/42")) == true
	decision(as_roles(["reader"], "GET", "/orders/42/items/7")) == true
	decision(as_roles(["reader"], "GET", "/orders/42/items/7/notes")) == true
}

test_reader_may_not_write if {
	decision(as_roles(["reader"], "POST", "/orders")) == false
	decision(as_roles(["reader"], "DELETE", "/orders/42")) == false
}

test_single_star_stays_in_one_segment if {
	# "/orders/*" covers "/orders/42" only; "/orders/*/items/**" needs "items".
	decision(as_roles(["reader"], "GET", "/orders/42/notes")) == false
	decision(as_roles(["writer"], "PUT", "/orders/42/items")) == false
}

test_writer_permissions_are_per_method if {
	decision(as_roles(["writer"], "POST", "/orders")) == true
	decision(as_roles(["writer"], "PATCH", "/orders/42")) == true
	decision(as_roles(["writer"], "POST", "/orders/42")) == false
	decision(as_roles(["writer"], "PUT", "/orders")) == false
	decision(as_roles(["writer"], "GET", "/orders")) == false
}

test_roles_add_up if {
	decision(as_roles(["reader", "writer"], "GET", "/orders/42")) == true
	decision(as_roles(["reader", "writer"], "PUT", "/orders/42")) == true
}

test_brace_alternatives if {
	decision(as_roles(["operator"], "GET", "/admin/metrics")) == true
	decision(as_roles(["operator"], "GET", "/admin/health")) == true
	decision(as_roles(["operator"], "GET", "/admin/users")) == false
	decision(as_roles(["operator"], "POST", "/orders/42/refund")) == true
}

test_admin_may_do_anything if {
	decision(as_roles(["admin"], "DELETE", "/orders/42")) == true
	decision(as_roles(["admin"], "PURGE", "/admin/cache")) == true
	decision(as_roles(["admin"], "GET", "/")) == true
}

test_single_string_role if {
	decision(as_roles("reader", "GET", "/orders")) == true
	decision(as_roles("reader writer", "POST", "/orders")) == false
}

# --- groups claim --------------------------------------------------------------

test_groups_map_to_roles if {
	decision(as_groups(["orders-readers"], "GET", "/orders/1")) == true
	decision(as_groups(["orders-readers"], "POST", "/orders")) == false
	decision(as_groups(["orders-team"], "POST", "/orders")) == true
	decision(as_groups(["/ops/on-call"], "POST", "/orders/1/refund")) == true
	decision(as_groups("/ops/on-call", "POST", "/orders/1/refund")) == true
}

test_a_group_is_not_a_role if {
	# "admin" as a group name grants nothing: groups only count through group_roles.
	decision(as_groups(["admin"], "GET", "/orders")) == false
	decision(as_groups(["unknown-group"], "GET", "/orders")) == false
}

test_roles_and_groups_combine if {
	doc := request({"roles": ["reader"], "groups": ["/ops/on-call"]}, "POST", "/orders/9/refund")
	decision(doc) == true
	policy.roles == {"reader", "operator"} with input as doc with data.rbac as shipped
}

# --- denied: no roles, wrong types, case -------------------------------------------

test_no_token if {
	decision({"request": {"method": "GET", "path": "/orders"}, "parsed_path": ["orders"]}) == false
}

test_no_role_claims if {
	decision(request({"sub": "alice"}, "GET", "/orders")) == false
	decision(as_roles([], "GET", "/orders")) == false
	decision(as_groups([], "GET", "/orders")) == false
}

test_unknown_role if {
	decision(as_roles(["superuser"], "GET", "/orders")) == false
}

test_roles_of_the_wrong_type if {
	decision(as_roles({"reader": true}, "GET", "/orders")) == false
	decision(as_roles([["reader"]], "GET", "/orders")) == false
	decision(as_roles([{"name": "reader"}], "GET", "/orders")) == false
	decision(as_roles(null, "GET", "/orders")) == false
	decision(as_roles(true, "GET", "/orders")) == false
	decision(as_groups({"orders-readers": 1}, "GET", "/orders")) == false
}

test_non_string_items_are_skipped if {
	decision(as_roles([1, null, "reader"], "GET", "/orders")) == true
}

test_comparisons_are_case_sensitive if {
	decision(as_roles(["Reader"], "GET", "/orders")) == false
	decision(as_roles(["ADMIN"], "GET", "/orders")) == false
	decision(as_groups(["Orders-Readers"], "GET", "/orders")) == false
	decision(as_roles(["reader"], "get", "/orders")) == false
	decision(as_roles(["reader"], "GET", "/Orders")) == false
}

test_path_prefix_is_not_enough if {
	decision(as_roles(["reader"], "GET", "/orders")) == true
	decision(as_roles(["reader"], "GET", "/orders/42")) == true
	decision(as_roles(["reader"], "GET", "/ordersadmin")) == false
	decision(as_roles(["reader"], "GET", "/ordersadmin/42")) == false
	decision(as_roles(["operator"], "GET", "/admin/healthz")) == false
	decision(as_roles(["operator"], "GET", "/adminx/health")) == false
	decision(as_roles(["reader"], "GET", "/orders-archive")) == false
	decision(as_roles(["reader"], "GET", "/api/orders")) == false
}

test_unsafe_paths_are_refused if {
	doc := object.union(as_roles(["reader"], "GET", "/orders/1/../../admin/users"), {"parsed_path": ["orders", "1", "..", "..", "admin", "users"]})
	decision(doc) == false
	doc2 := object.union(as_roles(["reader"], "GET", "/orders/..%2Fadmin"), {"parsed_path": ["orders", "../admin"]})
	decision(doc2) == false

	# "..;" is ".." to servers that strip ";…": /orders/..;/items/7 is /items/7.
	decision(as_roles(["reader"], "GET", "/orders/..;/items/7")) == false
	decision(as_roles(["reader"], "GET", "/orders/..;jsessionid=1/items/7")) == false
	decision(as_roles(["reader"], "GET", "/orders/.;")) == false
	decision(as_roles(["reader"], "GET", "/orders/42;v=2")) == true

	# Even admin: the path is refused, not the role.
	doc3 := object.union(as_roles(["admin"], "GET", "/a/./b"), {"parsed_path": ["a", ".", "b"]})
	decision(doc3) == false
}

# --- the data drives it --------------------------------------------------------

test_permissions_come_from_data if {
	config := {"group_roles": {"auditors": ["auditor"]}, "roles": {"auditor": [{"methods": ["GET"], "paths": ["/audit/**"]}]}}
	decide(as_groups(["auditors"], "GET", "/audit/2024/log"), config) == true
	decide(as_roles(["auditor"], "GET", "/audit/x"), config) == true
	decide(as_roles(["auditor"], "GET", "/audit"), config) == false
	decide(as_roles(["reader"], "GET", "/orders"), config) == false
}

test_role_without_permissions if {
	decide(as_roles(["empty"], "GET", "/"), {"roles": {"empty": []}}) == false
}
