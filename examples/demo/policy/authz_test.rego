package claimcheck.demo_test

import data.claimcheck.demo

call(client_id, method, path) := {
	"token": {"claims": {"client_id": client_id, "sub": client_id}},
	"request": {"method": method, "path": path},
}

test_allowlisted_client_reads_orders if {
	demo.allow with input as call("service-client-id", "GET", "/orders/42")
}

test_allowlisted_opaque_client_reads_orders if {
	demo.allow with input as call("opaque-service-id", "GET", "/orders/42")
}

test_other_client_is_refused if {
	not demo.allow with input as call("some-other-client", "GET", "/orders/42")
}

test_no_token_is_refused if {
	not demo.allow with input as {"request": {"method": "GET", "path": "/orders/42"}}
}

test_allowlisted_client_may_not_write if {
	not demo.allow with input as call("service-client-id", "DELETE", "/orders/42")
}

test_allowlisted_client_only_on_orders if {
	not demo.allow with input as call("service-client-id", "GET", "/admin")
}

test_allowlisted_client_reads_orders_and_below if {
	demo.allow with input as call("service-client-id", "GET", "/orders")
	demo.allow with input as call("service-client-id", "HEAD", "/orders/42")
	demo.allow with input as call("service-client-id", "GET", "/orders/42/items/7")
}

test_orders_prefix_is_matched_by_whole_segments if {
	every path in ["/ordersadmin", "/orders-archive", "/orders.json", "/api/orders", "/", ""] {
		not demo.allow with input as call("service-client-id", "GET", path)
	}
}

test_allowlist_comes_from_data if {
	demo.allow with input as call("reporting-job", "GET", "/orders")
		with data.demo.allowed_clients as ["reporting-job"]
}
