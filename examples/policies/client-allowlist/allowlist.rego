# client-allowlist: the Apigee client_id check from the client-credentials
# guide, per client. Only the client_ids listed in
# data.client_allowlist.clients (data.json) may call, and each only with its
# own methods under its own path prefixes. Anything else is denied (403; 401
# when there is no token at all).
#
# Use it:
#   policy: {paths: [examples/policies/client-allowlist], decision: claimcheck/examples/client_allowlist/allow}
#
# claimcheck has verified the token (signature, iss, aud, exp) before this
# runs; input.token.claims holds the verified claims.
package claimcheck.examples.client_allowlist

default allow := false

allow if {
	grant := data.client_allowlist.clients[client_id]
	input.request.method in grant.methods
	some prefix in grant.path_prefixes
	under(input.request.path, prefix)
	not unsafe_path
}

# The caller: RFC 9068's client_id claim, only when it is a string, so a
# number or a list never looks anything up.
client_id := input.token.claims.client_id if is_string(input.token.claims.client_id)

# under(path, prefix) holds when path is prefix or below it, segment-wise:
# "/orders" covers "/orders" and "/orders/42" but not "/orders-archive". A
# trailing slash on the prefix makes no difference; "/" covers everything.
# Methods and paths are compared exactly (both are case-sensitive in HTTP).
under(path, prefix) if path == trim_suffix(prefix, "/")

under(path, prefix) if startswith(path, concat("", [trim_suffix(prefix, "/"), "/"]))

# A path with a dot segment or an encoded slash or backslash may reach a
# different resource upstream than the one the prefix check saw
# ("/orders/../admin", "/orders/..%2Fadmin"), so it is refused outright. So
# is "..;x", which servers that strip path parameters read as "..".
# input.parsed_path holds the percent-decoded segments. (The shipped Envoy
# and Istio configs and claimcheck itself refuse or resolve these first.)
unsafe_path if {
	some segment in input.parsed_path
	split(segment, ";")[0] in {".", ".."}
}

unsafe_path if {
	some segment in input.parsed_path
	some separator in ["/", "\\"]
	contains(segment, separator)
}
