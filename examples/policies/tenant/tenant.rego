# tenant: tenant isolation. A call to /tenants/{tenant}/… is allowed only when
# the token's `tenant` claim equals that path segment (input.parsed_path[1]);
# the clients in data.tenant.support_clients (data.json) may also read any
# tenant with data.tenant.support_methods. Every other path is denied. On
# allow, an object decision sets `x-tenant` on the upstream request
# (replacing any value the client sent) and puts the tenant into Envoy's
# dynamic metadata for the access log.
#
# Use it:
#   policy: {paths: [examples/policies/tenant], decision: claimcheck/examples/tenant/decision}
# (claimcheck/examples/tenant/allow is the same rule as a boolean, without the
# header.)
#
# Tenants are compared exactly: "Acme" is not "acme". If yours are
# case-insensitive, compare lower() of both sides and forward the lower-case
# form. (To forward the claim itself instead, claimcheck's
# `forward.claims: {tenant: x-tenant}` does that without a policy.)
package claimcheck.examples.tenant

default allow := false

allow if member

allow if support

# The caller belongs to the tenant in the path.
member if {
	is_string(input.token.claims.tenant)
	input.token.claims.tenant == path_tenant
}

# The caller is a support client reading a tenant.
support if {
	is_string(input.token.claims.client_id)
	input.token.claims.client_id in data.tenant.support_clients
	input.request.method in data.tenant.support_methods
	path_tenant
}

# The tenant a request addresses: the percent-decoded segment after /tenants/,
# when it is a well-formed tenant id (data.tenant.id_pattern, so nothing odd
# reaches the x-tenant header). Undefined for other paths, including /tenants
# itself, and for paths with dot segments (also "..;") or encoded slashes or
# backslashes, which could reach another tenant upstream
# ("/tenants/acme/../globex").
path_tenant := input.parsed_path[1] if {
	input.parsed_path[0] == "tenants"
	regex.match(data.tenant.id_pattern, input.parsed_path[1])
	not unsafe_path
}

decision := {
	"allowed": true,
	"headers": {"x-tenant": path_tenant},
	"dynamic_metadata": {"tenant": path_tenant, "access": access},
} if allow

# No http_status: claimcheck's 403 (or 401 when there was no token). Headers
# on a deny would go to the client, so there are none.
decision := {"allowed": false} if not allow

access := "member" if member

else := "support" if support

unsafe_path if {
	some segment in input.parsed_path
	split(segment, ";")[0] in {".", ".."}
}

unsafe_path if {
	some segment in input.parsed_path
	some separator in ["/", "\\"]
	contains(segment, separator)
}
