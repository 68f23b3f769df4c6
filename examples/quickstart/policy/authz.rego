# The quickstart policy: the Apigee rule from the client-credentials guide —
# only the services listed in data.quickstart.allowed_clients may call.
# claimcheck has already verified the token (signature, iss, aud, exp) before
# this runs; input.token.claims holds the verified claims.
package claimcheck.authz

# Anything not explicitly allowed is denied.
default allow := false

allow if {
	input.token.claims.client_id in data.quickstart.allowed_clients
	input.request.method in {"GET", "POST"}
	orders_path
}

# /orders and every path below it, whole segments only: not /ordersadmin.
orders_path if input.request.path == "/orders"

orders_path if startswith(input.request.path, "/orders/")
