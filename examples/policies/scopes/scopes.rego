# scopes: AWS API Gateway style per-route scopes. data.scopes.routes (data.json)
# maps route keys to the scopes that may call them, as API Gateway's JWT
# authorizer does: the token needs ANY ONE of the route's scopes, and a route
# with an empty list needs none. A denied call gets an RFC 6750 §3.1 answer:
# 403, `www-authenticate: Bearer error="insufficient_scope", scope="…"` and a
# JSON body {"error": "insufficient_scope", "error_description": "…"}.
#
# Use it:
#   policy: {paths: [examples/policies/scopes], decision: claimcheck/examples/scopes/decision}
# (claimcheck/examples/scopes/allow is the same rule as a boolean, with
# claimcheck's own 403 body.)
#
# Route keys are "METHOD /path" or "$default":
#   - METHOD is exact and case-sensitive; ANY matches every method.
#   - {name} matches exactly one non-empty path segment; {name+} (greedy, last
#     segment only) matches one or more; anything else is a literal segment.
#   - Segments are compared percent-decoded (input.parsed_path).
#   - The most specific matching route decides: segment by segment, a literal
#     beats {name}, which beats {name+}; then a named method beats ANY. When no
#     route matches, "$default" decides; without it the answer is 404.
# The token's scopes are input.token.scopes (claimcheck reads them from the
# `scope` or `scp` claim); scopes are case-sensitive (RFC 6749 §3.3).
package claimcheck.examples.scopes

routes := data.scopes.routes

default allow := false

allow if {
	count(selected) > 0
	every key in selected {
		satisfied(routes[key])
	}
}

# The object decision claimcheck sends back.
decision := {"allowed": true, "dynamic_metadata": {"route": route}} if allow

# No token (possible only with token.required: false): no http_status, so
# claimcheck asks for a token (401, WWW-Authenticate: Bearer realm=…).
decision := {"allowed": false} if {
	not allow
	not input.token
}

decision := {
	"allowed": false,
	"http_status": 403,
	"headers": {
		"content-type": "application/json",
		"www-authenticate": sprintf(`Bearer error="insufficient_scope", scope="%s"`, [concat(" ", needed)]),
	},
	"body": json.marshal({
		"error": "insufficient_scope",
		"error_description": sprintf("%s requires one of the scopes: %s", [route, concat(", ", needed)]),
	}),
	"dynamic_metadata": {"route": route},
} if {
	not allow
	input.token
	count(selected) > 0
}

decision := {
	"allowed": false,
	"http_status": 404,
	"headers": {"content-type": "application/json"},
	"body": json.marshal({
		"error": "not_found",
		"error_description": sprintf("no route for %s %s", [input.request.method, input.request.path]),
	}),
} if {
	not allow
	input.token
	count(selected) == 0
}

# --- the token ---------------------------------------------------------------

token_scopes contains scope if {
	is_array(input.token.scopes)
	some scope in input.token.scopes
	is_string(scope)
}

satisfied(required) if count(required) == 0

satisfied(required) if {
	some scope in required
	scope in token_scopes
}

# The scopes that would have satisfied the route(s) that decided, for the
# challenge's scope attribute.
needed := sort({scope |
	some key in selected
	not satisfied(routes[key])
	some scope in routes[key]
})

# --- route selection ---------------------------------------------------------

# rank[key] is the specificity of each route that matches the request: one
# digit per pattern segment (2 literal, 1 {name}, 0 {name+}), then one for the
# method (1 named, 0 ANY). The path digits of two routes that match the same
# path are either equal or differ before either runs out ({name+} comes last
# and ranks lowest), so the larger string is the more specific route.
rank[key] := concat("", [path_specificity(pattern), method_specificity(method)]) if {
	not unsafe_path
	some key, _ in routes
	[method, pattern] := split(key, " ")
}

# The route(s) that decide: the most specific matches, else "$default". (More
# than one only if the table has the same route twice, e.g. "/orders/{id}"
# and "/orders/{orderId}"; then every one of them must be satisfied.)
selected := {key | some key, r in rank; r == best} if count(rank) > 0

else := {"$default"} if {
	not unsafe_path
	routes["$default"]
}

else := set()

best := max({r | some r in rank})

# route names the selected route(s), for messages and access logs.
route := concat(" | ", sort(selected)) if count(selected) > 0

method_specificity(method) := "0" if method == "ANY"

method_specificity(method) := "1" if {
	method != "ANY"
	method == input.request.method
}

path_specificity(pattern) := concat("", [segment_specificity(p) | some p in pattern_segments]) if {
	startswith(pattern, "/")
	pattern_segments := split(substring(pattern, 1, -1), "/")
	path := input.parsed_path
	n := count(pattern_segments)

	# {name+} only as the last segment.
	every p in array.slice(pattern_segments, 0, n - 1) {
		not greedy(p)
	}
	length_ok(pattern_segments[n - 1], count(path), n)
	every i, p in pattern_segments {
		segment_matches(p, path[i])
	}
}

length_ok(last, path_len, n) if {
	greedy(last)
	path_len >= n
}

length_ok(last, path_len, n) if {
	not greedy(last)
	path_len == n
}

segment_matches(p, segment) if {
	variable(p)
	segment != ""
}

segment_matches(p, segment) if {
	not variable(p)
	segment == p
}

# {name} or {name+}
variable(p) if regex.match(`^\{[^{}/]+\}$`, p)

greedy(p) if {
	variable(p)
	endswith(p, "+}")
}

segment_specificity(p) := "0" if greedy(p)

segment_specificity(p) := "1" if {
	variable(p)
	not greedy(p)
}

segment_specificity(p) := "2" if not variable(p)

# A path with a dot segment or an encoded slash or backslash may reach a
# different resource upstream than the route that matched here
# ("/reports/x/../../admin", also "..;"), so it matches no route, not even
# $default.
unsafe_path if {
	some segment in input.parsed_path
	split(segment, ";")[0] in {".", ".."}
}

unsafe_path if {
	some segment in input.parsed_path
	some separator in ["/", "\\"]
	contains(segment, separator)
}
