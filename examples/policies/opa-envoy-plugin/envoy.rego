# opa-envoy-plugin: a policy written for opa-envoy-plugin (OPA-Envoy), as it
# would be written there: it reads only what opa-envoy-plugin provides
# (input.attributes, the CheckRequest with protojson field names, and
# input.parsed_path) and returns opa-envoy-plugin's object form
# {allowed, headers, http_status, body}. It allows GET and HEAD under /public,
# any call whose x-api-role header is admin, and POST /api/orders from the
# checkout service's mTLS identity; everything else gets a 403 JSON body.
#
# It runs unchanged under claimcheck, which gives the policy the same input
# fields and reads the same result object. Use it:
#   claimcheck:         policy: {paths: [examples/policies/opa-envoy-plugin], decision: claimcheck/examples/opa_envoy_plugin/result}
#   opa-envoy-plugin:   plugins: {envoy_ext_authz_grpc: {path: claimcheck/examples/opa_envoy_plugin/result}}
#
# One difference is on purpose: under claimcheck the bearer token has been
# verified before this runs (and with token.required, the default, a request
# without a valid token never reaches it), so the policy has no
# io.jwt.decode_verify of the authorization header, which opa-envoy-plugin
# policies usually need. It does not read input.token either, so it still
# works under opa-envoy-plugin, where that field does not exist.
package claimcheck.examples.opa_envoy_plugin

import input.attributes.request.http

default allow := false

# Anyone may read /public and below. http.path includes the query string, so
# the path is matched through input.parsed_path (percent-decoded segments,
# query removed).
allow if {
	http.method in {"GET", "HEAD"}
	input.parsed_path[0] == "public"
	not unsafe_path
}

# Callers whose x-api-role header is "admin" may do anything. Envoy sends
# header names in lower case; the value is compared exactly. Only safe when a
# trusted hop sets x-api-role and strips any value a client sent: neither
# claimcheck nor opa-envoy-plugin knows where a header came from.
allow if http.headers["x-api-role"] == "admin"

# The checkout service, identified by its mTLS certificate (a SPIFFE ID in
# source.principal), may create orders.
allow if {
	input.attributes.source.principal == "spiffe://cluster.local/ns/shop/sa/checkout"
	http.method == "POST"
	input.parsed_path == ["api", "orders"]
}

# "/public/../admin" must not count as being under /public, nor must
# "/public/..;/admin" (".." to servers that strip path parameters) or
# "/public/..%2Fadmin" (an encoded slash an upstream may decode).
unsafe_path if {
	some segment in input.parsed_path
	split(segment, ";")[0] in {".", ".."}
}

unsafe_path if {
	some segment in input.parsed_path
	some separator in ["/", "\\"]
	contains(segment, separator)
}

result := {"allowed": true, "headers": {"x-ext-auth-allow": "yes"}} if allow

else := {
	"allowed": false,
	"http_status": 403,
	"headers": {"content-type": "application/json"},
	"body": json.marshal({"error": "forbidden", "error_description": "the policy does not allow this request"}),
}
