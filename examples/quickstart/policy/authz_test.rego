package claimcheck.authz_test

import data.claimcheck.authz

orders_get(client_id) := {
	"token": {"claims": {"client_id": client_id}},
	"request": {"method": "GET", "path": "/orders/42"},
}

test_allowed_client_may_read_orders if {
	authz.allow with input as orders_get("service-client-id")
}

test_other_client_is_refused if {
	not authz.allow with input as orders_get("some-other-client")
}

test_no_token_is_refused if {
	not authz.allow with input as {"request": {"method": "GET", "path": "/orders"}}
}

test_allowed_client_may_not_delete if {
	not authz.allow with input as {
		"token": {"claims": {"client_id": "service-client-id"}},
		"request": {"method": "DELETE", "path": "/orders/42"},
	}
}

test_allowed_client_only_on_orders if {
	not authz.allow with input as {
		"token": {"claims": {"client_id": "service-client-id"}},
		"request": {"method": "GET", "path": "/admin"},
	}
}

test_orders_and_the_paths_below_it if {
	authz.allow with input as {
		"token": {"claims": {"client_id": "service-client-id"}},
		"request": {"method": "POST", "path": "/orders"},
	}
	authz.allow with input as orders_get("service-client-id")
	authz.allow with input as {
		"token": {"claims": {"client_id": "service-client-id"}},
		"request": {"method": "GET", "path": "/orders/42/items/7"},
	}
}

test_orders_prefix_is_matched_by_whole_segments if {
	every path in ["/ordersadmin", "/orders-archive", "/orders.json", "/api/orders", "/", ""] {
		not authz.allow with input as {
			"token": {"claims": {"client_id": "service-client-id"}},
			"request": {"method": "GET", "path": path},
		}
	}
}

test_allow_list_comes_from_data if {
	authz.allow with input as orders_get("another-service")
		with data.quickstart.allowed_clients as ["another-service"]
}
