# The quickstart policy: the Apigee rule from the client-credentials guide —
# only the services listed in data.quickstart.allowed_clients may call.
# claimcheck has already verified the token (signature, iss, aud, exp) before
# this runs; input.token.claims holds the verified claims.
package claimcheck.authz

# Anything not explicitly allowed is denied.
default allow := false

# Paths below /orders, and /orders itself: whole segments, never
# /ordersadmin. Two bodies rather than a helper rule: OPA caches a helper's
# value per evaluation, a dozen allocations on every Check.
allow if {
	input.token.claims.client_id in data.quickstart.allowed_clients
	input.request.method in {"GET", "POST"}
	startswith(input.request.path, "/orders/")
}

allow if {
	input.token.claims.client_id in data.quickstart.allowed_clients
	input.request.method in {"GET", "POST"}
	input.request.path == "/orders"
}
