# rbac: role-based access by method and path. The caller's roles come from the
# token's `roles` claim (an array of strings, or one string) and from its
# `groups` claim, mapped to roles by data.rbac.group_roles; each role's
# permissions are in data.rbac.roles (data.json): lists of methods ("*" for
# any) and path globs. A request is allowed when one of the caller's roles has
# a permission matching both its method and its path.
#
# Use it:
#   policy: {paths: [examples/policies/rbac], decision: claimcheck/examples/rbac/allow}
#
# Path globs use glob.match with "/" as the delimiter: "*" matches within one
# segment ("/orders/*" covers "/orders/42", not "/orders/42/items"), "**"
# across segments ("/**" covers every path), "{a,b}" either alternative.
# Roles, groups, methods and paths are all compared case-sensitively.
# Other IdPs put roles elsewhere (Keycloak: realm_access.roles); adjust
# claim_values below.
package claimcheck.examples.rbac

default allow := false

allow if {
	not unsafe_path
	some role in roles
	some permission in data.rbac.roles[role]
	method_allowed(permission.methods)
	some pattern in permission.paths
	glob.match(pattern, ["/"], input.request.path)
}

# The caller's roles.
roles contains role if some role in claim_values("roles")

roles contains role if {
	some group in claim_values("groups")
	some role in data.rbac.group_roles[group]
}

# claim_values(name) is the set of strings in claim name: its string items
# when it is an array, itself when it is a string, else nothing.
claim_values(name) := {value |
	some value in input.token.claims[name]
	is_string(value)
} if is_array(input.token.claims[name])

claim_values(name) := {input.token.claims[name]} if is_string(input.token.claims[name])

method_allowed(methods) if "*" in methods

method_allowed(methods) if input.request.method in methods

# A path with a dot segment or an encoded slash or backslash may reach a
# different resource upstream than the one the glob matched
# ("/orders/1/../../admin", also "..;"), so it is refused outright.
unsafe_path if {
	some segment in input.parsed_path
	split(segment, ";")[0] in {".", ".."}
}

unsafe_path if {
	some segment in input.parsed_path
	some separator in ["/", "\\"]
	contains(segment, separator)
}
