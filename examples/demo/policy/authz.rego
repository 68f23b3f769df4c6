# The policy of `claimcheck demo`: the client_id allowlist from the
# client-credentials guide. Only the services in data.demo.allowed_clients
# may read the orders API; every other verified client gets 403, and a
# request without a valid token never gets here (401). The client_id is in
# input.token.claims either way: signed into a JWT, or given by the issuer's
# introspection for an opaque token (input.token.kind tells which).
package claimcheck.demo

default allow := false

allow if {
	input.token.claims.client_id in data.demo.allowed_clients
	input.request.method in {"GET", "HEAD"}
	orders_path
}

# /orders and every path below it, whole segments only: not /ordersadmin.
orders_path if input.request.path == "/orders"

orders_path if startswith(input.request.path, "/orders/")
