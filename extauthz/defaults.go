package extauthz

// DefaultRealm is the WWW-Authenticate realm when Config.Realm is empty.
const DefaultRealm = "claimcheck"

// DefaultSources are where tokens are looked for when Config.Sources is
// empty: the Authorization header's Bearer credentials (RFC 6750). A new
// slice each time, so callers may change it.
func DefaultSources() []TokenSource {
	return []TokenSource{{Header: "authorization", Prefix: "Bearer "}}
}
