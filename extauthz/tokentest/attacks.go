package tokentest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// Target is the issuer a set of attack tokens is aimed at: what a verifier
// trusts, and what the attacker knows of it (everything public) plus, for
// the attacks that prove a check other than the signature's, its signing
// keys.
type Target struct {
	// Issuer and Audience are the issuer's iss and an accepted aud.
	Issuer, Audience string
	// RSA is the issuer's RS256 key. EC holds its ECDSA keys, by algorithm
	// (ES256, ES384, ES512); each gets the psychic-signature attacks. All
	// have a kid, and the verifier's key set for Issuer holds exactly these
	// keys, under the default (asymmetric) algorithm allowlist.
	RSA *Key
	EC  []*Key
	// RequireTyp is the issuer's required typ (the verifier's
	// require_typ), or empty; attacks on typ are made only when it is set.
	// Tokens signed with the issuer's keys carry it, or "at+jwt".
	RequireTyp string
	// Other is the key of another issuer the verifier trusts, with a kid
	// of its own.
	Other *Key
	// AttackerURL is the base URL of a server the attacker controls, named
	// by jku and x5u headers. A verifier must never fetch it.
	AttackerURL string
	// MaxSize is the verifier's token size limit (default token.DefaultMaxSize).
	MaxSize int
	// Now is the verifier's clock.
	Now time.Time
}

// Attack is a token a verifier must reject, and the reason code it must
// give (token.Reason's codes).
type Attack struct {
	Name   string
	Token  string
	Reason string
}

// Attacks returns tokens against t that a correct verifier rejects: alg
// none in every spelling, algorithm confusion, keys embedded in or linked
// from the header, hostile kids, psychic ECDSA signatures, stripped and
// foreign signatures, bad times, issuers and audiences, unsupported
// headers, JWE, the JSON serializations, repeated member names, invalid
// UTF-8, oversized, wide and deeply nested tokens, and (with RequireTyp)
// tokens of another type. Tokens meant to fail a check other than the
// signature are signed with the issuer's own key, so only that check can
// stop them.
func Attacks(tb testing.TB, t Target) []Attack {
	tb.Helper()
	g := newGen(tb, t)
	var out []Attack
	for _, f := range []func(*gen) []Attack{
		(*gen).algNone, (*gen).confusion, (*gen).embeddedKeys, (*gen).kids, (*gen).psychic,
		(*gen).signatures, (*gen).times, (*gen).issuerAudience, (*gen).extensions,
		(*gen).typs, (*gen).serializations, (*gen).strictJSON, (*gen).sizes,
	} {
		out = append(out, f(g)...)
	}
	return out
}

// KeyConfusion returns HS256 tokens for iss and aud whose HMAC secret is
// pub's public key in each encoding of PublicKeyEncodings (and HS384 and
// HS512 ones keyed with its PEM), with pub's kid and without one. A verifier that takes pub for an RSA or
// EC key must refuse them all with algorithm_not_allowed.
func KeyConfusion(tb testing.TB, iss, aud string, pub *Key, now time.Time) []Attack {
	tb.Helper()
	c := baseClaims(iss, aud, now)
	var out []Attack
	for enc, secret := range PublicKeyEncodings(tb, pub) {
		algs := []string{"HS256"}
		if enc == "PEM" {
			algs = append(algs, "HS384", "HS512")
		}
		for _, alg := range algs {
			for _, kid := range []string{pub.KID, ""} {
				k := NewKeyFrom(tb, secret, kid, alg)
				name := fmt.Sprintf("%s keyed with the %s public key as %s", alg, pub.Alg, enc)
				if kid == "" {
					name += ", no kid"
				}
				out = append(out, Attack{name, Mint(tb, k, c, WithHeader("typ", "at+jwt")), "algorithm_not_allowed"})
			}
		}
	}
	return out
}

// gen makes the attacks of one Target.
type gen struct {
	tb       testing.TB
	t        Target
	typ      string         // the typ of genuine tokens
	claims   map[string]any // valid claims
	attacker *Key           // an RSA key nobody trusts, kid "attacker-1"
}

func newGen(tb testing.TB, t Target) *gen {
	if t.MaxSize == 0 {
		t.MaxSize = token.DefaultMaxSize
	}
	typ := t.RequireTyp
	if typ == "" {
		typ = "at+jwt"
	}
	return &gen{tb: tb, t: t, typ: typ, claims: baseClaims(t.Issuer, t.Audience, t.Now), attacker: NewRSAKey(tb, "attacker-1")}
}

// baseClaims are valid claims at now, without a random jti.
func baseClaims(iss, aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss": iss, "aud": aud, "sub": "attack-subject", "client_id": "attack-client", "jti": "attack",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// with returns the valid claims changed by set (a nil value deletes).
func (g *gen) with(set map[string]any) map[string]any { return edited(g.claims, set) }

// edited returns a copy of m changed by set (a nil value deletes).
func edited(m, set map[string]any) map[string]any {
	c := make(map[string]any, len(m)+len(set))
	for k, v := range m {
		c[k] = v
	}
	for k, v := range set {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// genuine mints claims with the issuer's RSA key and typ, as changed by opts.
func (g *gen) genuine(claims map[string]any, opts ...MintOption) string {
	return Mint(g.tb, g.t.RSA, claims, append([]MintOption{WithHeader("typ", g.typ)}, opts...)...)
}

// header returns a genuine-looking header for k with extra fields (a nil
// value deletes).
func (g *gen) header(k *Key, extra map[string]any) map[string]any {
	return edited(map[string]any{"alg": k.Alg, "kid": k.KID, "typ": g.typ}, extra)
}

func (g *gen) algNone() []Attack {
	var out []Attack
	payload := MustJSON(g.tb, g.claims)
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		for _, kid := range []any{nil, g.t.RSA.KID} {
			h := MustJSON(g.tb, g.header(g.t.RSA, map[string]any{"alg": alg, "kid": kid}))
			input := SigningInput(h, payload)
			suffix := ""
			if kid != nil {
				suffix = " and the issuer's kid"
			}
			out = append(out,
				Attack{fmt.Sprintf("alg %s without signature%s", alg, suffix), input + ".", "token_malformed"},
				Attack{fmt.Sprintf("alg %s with the issuer's RS256 signature%s", alg, suffix), Compact(h, payload, Sign(g.tb, g.t.RSA, input)), "algorithm_not_allowed"},
				Attack{fmt.Sprintf("alg %s with a junk signature%s", alg, suffix), Compact(h, payload, []byte("x")), "algorithm_not_allowed"},
			)
		}
	}
	return out
}

func (g *gen) confusion() []Attack {
	out := KeyConfusion(g.tb, g.t.Issuer, g.t.Audience, g.t.RSA, g.t.Now)
	for _, k := range g.t.EC {
		out = append(out, KeyConfusion(g.tb, g.t.Issuer, g.t.Audience, k, g.t.Now)...)
	}
	// The kid=/dev/null trick: an HMAC keyed with an empty file's contents.
	h := MustJSON(g.tb, map[string]any{"alg": "HS256", "kid": "../../../../../../dev/null", "typ": g.typ})
	payload := MustJSON(g.tb, g.claims)
	mac := hmac.New(sha256.New, nil)
	mac.Write([]byte(SigningInput(h, payload)))
	return append(out, Attack{"HS256 with an empty secret and kid /dev/null", Compact(h, payload, mac.Sum(nil)), "algorithm_not_allowed"})
}

func (g *gen) embeddedKeys() []Attack {
	a := g.attacker
	jku := g.t.AttackerURL + "/jwks.json"
	x5u := g.t.AttackerURL + "/cert.pem"
	x5c := []string{base64.StdEncoding.EncodeToString(SelfSignedCert(g.tb, a))}
	issuerKID := WithHeader("kid", g.t.RSA.KID)
	mint := func(opts ...MintOption) string {
		return Mint(g.tb, a, g.claims, append([]MintOption{WithHeader("typ", g.typ)}, opts...)...)
	}
	out := []Attack{
		{"jwk header with the attacker's key and kid", mint(WithHeader("jwk", a.Public)), "key_unknown"},
		{"jwk header with the attacker's key under the issuer's kid", mint(WithHeader("jwk", a.Public), issuerKID), "signature_invalid"},
		{"jwk header with the attacker's key, no kid", mint(WithHeader("jwk", a.Public), WithoutKID()), "signature_invalid"},
		{"jku header at the attacker's JWKS with its kid", mint(WithHeader("jku", jku)), "key_unknown"},
		{"jku header at the attacker's JWKS under the issuer's kid", mint(WithHeader("jku", jku), issuerKID), "signature_invalid"},
		{"x5u header at the attacker's certificate", mint(WithHeader("x5u", x5u)), "key_unknown"},
		{"x5u header under the issuer's kid", mint(WithHeader("x5u", x5u), issuerKID), "signature_invalid"},
		{"x5c header with the attacker's certificate, no kid", mint(WithHeader("x5c", x5c), WithoutKID()), "signature_invalid"},
		{"x5c header under the issuer's kid", mint(WithHeader("x5c", x5c), issuerKID), "signature_invalid"},
		{"jwk, jku, x5u and x5c together", mint(WithHeader("jwk", a.Public), WithHeader("jku", jku), WithHeader("x5u", x5u), WithHeader("x5c", x5c), issuerKID), "signature_invalid"},
	}
	for _, k := range g.t.EC {
		ea := NewECKeyFor(g.tb, k.KID, k.Alg)
		out = append(out, Attack{fmt.Sprintf("jwk header with an attacker's %s key under the issuer's kid", k.Alg),
			Mint(g.tb, ea, g.claims, WithHeader("typ", g.typ), WithHeader("jwk", ea.Public)), "signature_invalid"})
	}
	return out
}

func (g *gen) kids() []Attack {
	var out []Attack
	for _, kid := range []string{
		"../../../../../../etc/passwd", "/dev/null", "..\\..\\..\\windows\\win.ini", "file:///etc/passwd",
		"' OR '1'='1", "x' UNION SELECT 'secret' --", "1; DROP TABLE keys; --",
		"$(id)", "|cat /etc/passwd", "{{7*7}}", "kid\x00with-nul", "kid\r\nX-Injected: 1", "",
		strings.Repeat("k", 8<<10),
	} {
		name := fmt.Sprintf("kid %q", clipName(kid))
		out = append(out, Attack{name, Mint(g.tb, g.attacker, g.claims, WithHeader("typ", g.typ), WithHeader("kid", kid)), "key_unknown"})
	}
	out = append(out,
		Attack{"kid longer than the size limit", Mint(g.tb, g.attacker, g.claims, WithHeader("kid", strings.Repeat("k", g.t.MaxSize))), "token_too_large"},
		Attack{"kid is a number", Mint(g.tb, g.attacker, g.claims, WithHeader("kid", 1)), "token_malformed"},
		Attack{"kid is an object", Mint(g.tb, g.attacker, g.claims, WithHeader("kid", map[string]any{"$ne": ""})), "token_malformed"},
	)
	return out
}

func clipName(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%s… (%d bytes)", s[:12], len(s))
	}
	return s
}

func (g *gen) psychic() []Attack {
	var out []Attack
	payload := MustJSON(g.tb, g.claims)
	for _, k := range g.t.EC {
		n := CurveOrder(g.tb, k.Alg)
		zero, one := big.NewInt(0), big.NewInt(1)
		for _, rs := range []struct {
			name string
			r, s *big.Int
		}{
			{"r=s=0", zero, zero},
			{"r=s=n", n, n},
			{"r=n, s=1", n, one},
			{"r=1, s=n", one, n},
			{"r=0, s=1", zero, one},
			{"r=s=n+1", new(big.Int).Add(n, one), new(big.Int).Add(n, one)},
		} {
			sig := ECDSASignature(g.tb, k.Alg, rs.r, rs.s)
			for _, kid := range []any{k.KID, nil} {
				h := MustJSON(g.tb, g.header(k, map[string]any{"kid": kid}))
				name := fmt.Sprintf("%s psychic signature %s", k.Alg, rs.name)
				if kid == nil {
					name += ", no kid"
				}
				out = append(out, Attack{name, Compact(h, payload, sig), "signature_invalid"})
			}
		}
		h := MustJSON(g.tb, g.header(k, nil))
		out = append(out,
			Attack{k.Alg + " signature of the wrong length", Compact(h, payload, make([]byte, 7)), "signature_invalid"},
			Attack{k.Alg + " DER-encoded signature", Compact(h, payload, append([]byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01}, 0x00)), "signature_invalid"},
		)
	}
	return out
}

func (g *gen) signatures() []Attack {
	valid := g.genuine(g.claims)
	parts := splitCompact(g.tb, valid)
	forged := SigningInput(MustJSON(g.tb, g.header(g.t.RSA, nil)), MustJSON(g.tb, g.with(map[string]any{"sub": "admin"})))
	o := g.t.Other
	otherToken := Mint(g.tb, o, baseClaims("https://other.invalid", g.t.Audience, g.t.Now))
	op := splitCompact(g.tb, otherToken)
	return []Attack{
		{"stripped signature", parts[0] + "." + parts[1] + ".", "token_malformed"},
		{"stripped signature and its dot", parts[0] + "." + parts[1], "token_malformed"},
		{"one-byte signature", parts[0] + "." + parts[1] + ".AA", "signature_invalid"},
		{"genuine signature over other claims", forged + "." + parts[2], "signature_invalid"},
		{"signature by another issuer's key, its kid", Mint(g.tb, o, g.claims, WithHeader("typ", g.typ)), "key_unknown"},
		{"signature by another issuer's key, the issuer's kid", Mint(g.tb, o, g.claims, WithHeader("typ", g.typ), WithHeader("kid", g.t.RSA.KID)), "signature_invalid"},
		{"signature by another issuer's key, no kid", Mint(g.tb, o, g.claims, WithHeader("typ", g.typ), WithoutKID()), "signature_invalid"},
		{"another issuer's token with the payload swapped", op[0] + "." + parts[1] + "." + op[2], "key_unknown"},
		{"signature by an unknown key with the issuer's kid", Mint(g.tb, NewRSAKey(g.tb, g.t.RSA.KID), g.claims, WithHeader("typ", g.typ)), "signature_invalid"},
	}
}

func (g *gen) times() []Attack {
	now := g.t.Now
	return []Attack{
		{"expired an hour ago", g.genuine(g.with(map[string]any{"exp": now.Add(-time.Hour).Unix()})), "token_expired"},
		{"expired at the epoch", g.genuine(g.with(map[string]any{"exp": 0})), "token_expired"},
		{"expired long ago, negative exp", g.genuine(g.with(map[string]any{"exp": -1})), "token_expired"},
		{"not valid for another hour", g.genuine(g.with(map[string]any{"nbf": now.Add(time.Hour).Unix()})), "token_not_yet_valid"},
		{"issued a century in the future", g.genuine(g.with(map[string]any{"iat": now.AddDate(100, 0, 0).Unix(), "exp": now.AddDate(101, 0, 0).Unix()})), "iat_in_future"},
		{"issued a day in the future", g.genuine(g.with(map[string]any{"iat": now.Add(24 * time.Hour).Unix()})), "iat_in_future"},
		{"iat beyond year 9999", g.genuine(g.with(map[string]any{"iat": int64(1) << 50})), "claims_invalid"},
		{"exp beyond year 9999", g.genuine(g.with(map[string]any{"exp": 1e300})), "claims_invalid"},
		{"exp is a string", g.genuine(g.with(map[string]any{"exp": fmt.Sprint(now.Add(time.Hour).Unix())})), "claims_invalid"},
		{"no exp", g.genuine(g.with(map[string]any{"exp": nil})), "exp_missing"},
	}
}

func (g *gen) issuerAudience() []Attack {
	iss, aud := g.t.Issuer, g.t.Audience
	return []Attack{
		{"iss of an untrusted issuer", g.genuine(g.with(map[string]any{"iss": "https://attacker.invalid"})), "issuer_unknown"},
		{"iss with a trailing slash", g.genuine(g.with(map[string]any{"iss": iss + "/"})), "issuer_unknown"},
		{"iss in upper case", g.genuine(g.with(map[string]any{"iss": strings.ToUpper(iss)})), "issuer_unknown"},
		{"iss as a list", g.genuine(g.with(map[string]any{"iss": []string{iss}})), "issuer_unknown"},
		{"no iss", g.genuine(g.with(map[string]any{"iss": nil})), "issuer_unknown"},
		{"aud of another API", g.genuine(g.with(map[string]any{"aud": "another-api"})), "audience_mismatch"},
		{"aud list without the API", g.genuine(g.with(map[string]any{"aud": []string{"a", "b"}})), "audience_mismatch"},
		{"aud in upper case", g.genuine(g.with(map[string]any{"aud": strings.ToUpper(aud)})), "audience_mismatch"},
		{"empty aud list", g.genuine(g.with(map[string]any{"aud": []string{}})), "audience_mismatch"},
		{"no aud", g.genuine(g.with(map[string]any{"aud": nil})), "audience_mismatch"},
		{"aud is an object", g.genuine(g.with(map[string]any{"aud": map[string]any{aud: true}})), "claims_invalid"},
	}
}

func (g *gen) extensions() []Attack {
	return []Attack{
		{"unknown crit extension", g.genuine(g.claims, WithHeader("crit", []string{"urn:attack"}), WithHeader("urn:attack", true)), "header_unsupported"},
		{"crit naming a registered header", g.genuine(g.claims, WithHeader("crit", []string{"kid"})), "header_unsupported"},
		{"empty crit", g.genuine(g.claims, WithHeader("crit", []string{})), "header_unsupported"},
		{"b64 false with crit", g.genuine(g.claims, WithHeader("b64", false), WithHeader("crit", []string{"b64"})), "header_unsupported"},
		{"b64 false without crit", g.genuine(g.claims, WithHeader("b64", false)), "header_unsupported"},
	}
}

func (g *gen) typs() []Attack {
	if g.t.RequireTyp == "" {
		return nil
	}
	idToken := g.with(map[string]any{"nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "auth_time": g.t.Now.Unix()})
	return []Attack{
		{"ID token (typ JWT)", g.genuine(idToken, WithHeader("typ", "JWT")), "typ_mismatch"},
		{"ID token without typ", Mint(g.tb, g.t.RSA, idToken, WithoutHeader("typ")), "typ_mismatch"},
		{"typ application/jwt", g.genuine(g.claims, WithHeader("typ", "application/jwt")), "typ_mismatch"},
		{"typ with a trailing space", g.genuine(g.claims, WithHeader("typ", g.t.RequireTyp+" ")), "typ_mismatch"},
		{"typ with a parameter", g.genuine(g.claims, WithHeader("typ", g.t.RequireTyp+"; charset=utf-8")), "typ_mismatch"},
		{"typ of a logout token", g.genuine(g.claims, WithHeader("typ", "logout+jwt")), "typ_mismatch"},
		{"typ is a number", g.genuine(g.claims, WithHeader("typ", 9068)), "token_malformed"},
	}
}

func (g *gen) serializations() []Attack {
	valid := g.genuine(g.claims)
	flat, general := JSONSerializations(g.tb, valid)
	parts := splitCompact(g.tb, valid)
	return []Attack{
		{"JWE encrypted to the issuer's key", Encrypt(g.tb, g.t.RSA, MustJSON(g.tb, g.claims)), "token_malformed"},
		{"JWE-shaped five segments", parts[0] + ".." + parts[1] + "." + parts[2] + ".", "token_malformed"},
		{"JSON serialization, flattened", flat, "token_malformed"},
		{"JSON serialization, general", general, "token_malformed"},
		{"JSON serialization after a space", " " + flat, "token_malformed"},
		{"genuine token with a trailing dot", valid + ".", "token_malformed"},
	}
}

func (g *gen) strictJSON() []Attack {
	rsa := g.t.RSA
	h := string(MustJSON(g.tb, g.header(rsa, nil)))
	p := string(MustJSON(g.tb, g.claims))
	// addTo inserts JSON members after the opening brace of obj.
	addTo := func(obj, members string) []byte { return []byte("{" + members + "," + obj[1:]) }
	return []Attack{
		{"header repeats alg (none first)", MintRaw(g.tb, rsa, addTo(h, `"alg":"none"`), []byte(p)), "token_malformed"},
		{"header repeats kid", MintRaw(g.tb, rsa, addTo(h, `"kid":"attacker-1"`), []byte(p)), "token_malformed"},
		{"payload repeats sub", MintRaw(g.tb, rsa, []byte(h), addTo(p, `"sub":"admin"`)), "token_malformed"},
		{"payload repeats iss", MintRaw(g.tb, rsa, []byte(h), addTo(p, `"iss":"https://attacker.invalid"`)), "token_malformed"},
		{"payload repeats aud", MintRaw(g.tb, rsa, []byte(h), addTo(p, `"aud":"another-api"`)), "token_malformed"},
		{"payload repeats a nested member", MintRaw(g.tb, rsa, []byte(h), addTo(p, `"realm_access":{"roles":["admin"],"roles":["user"]}`)), "token_malformed"},
		{"payload repeats a member with an escaped name", MintRaw(g.tb, rsa, []byte(h), addTo(p, `"s\u0075b":"admin"`)), "token_malformed"},
		{"payload with invalid UTF-8 in a claim", MintRaw(g.tb, rsa, []byte(h), addTo(p, "\"name\":\"ad\xffmin\"")), "token_malformed"},
		{"payload with an overlong UTF-8 slash", MintRaw(g.tb, rsa, []byte(h), addTo(p, "\"path\":\"\xc0\xaf\"")), "token_malformed"},
		{"payload with a UTF-16 surrogate encoded as UTF-8", MintRaw(g.tb, rsa, []byte(h), addTo(p, "\"x\":\"\xed\xa0\x80\"")), "token_malformed"},
		{"payload escaping a lone high surrogate", MintRaw(g.tb, rsa, []byte(h), addTo(p, `"sub":"admin\ud800"`)), "token_malformed"},
		{"payload escaping a lone low surrogate", MintRaw(g.tb, rsa, []byte(h), addTo(p, `"x":"\udc00\ud800"`)), "token_malformed"},
		{"payload with invalid UTF-8 in a member name", MintRaw(g.tb, rsa, []byte(h), addTo(p, "\"\xfe\":1")), "token_malformed"},
		{"header with invalid UTF-8", MintRaw(g.tb, rsa, addTo(h, "\"x\":\"\xff\""), []byte(p)), "token_malformed"},
		{"payload in Latin-1", MintRaw(g.tb, rsa, []byte(h), addTo(p, "\"name\":\"Jos\xe9\"")), "token_malformed"},
	}
}

func (g *gen) sizes() []Attack {
	a := g.attacker
	issuerKID := WithHeader("kid", g.t.RSA.KID)
	wide := map[string]any{}
	for i := range 1000 {
		wide[fmt.Sprintf("h%d", i)] = i
	}
	for k, v := range g.header(g.t.RSA, nil) {
		wide[k] = v
	}
	manyClaims := g.with(nil)
	for i := range 1000 {
		manyClaims[fmt.Sprintf("c%d", i)] = i
	}
	nest := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	deep := func(depth int) []byte { return addMember(MustJSON(g.tb, g.claims), `"deep":`+nest(depth)) }
	h := MustJSON(g.tb, g.header(g.t.RSA, nil))
	// The largest token under the limit, padded by a claim.
	pad := func(n int) string {
		c := g.with(map[string]any{"pad": ""})
		over := n - len(g.genuine(c))
		c["pad"] = strings.Repeat("p", over*3/4+1)
		return g.genuine(c)
	}
	return []Attack{
		{"genuine token one past the size limit", pad(g.t.MaxSize), "token_too_large"},
		{"garbage twice the size limit", strings.Repeat("A", 2*g.t.MaxSize), "token_too_large"},
		{"1000 header parameters", MintRaw(g.tb, a, MustJSON(g.tb, wide), MustJSON(g.tb, g.claims)), "signature_invalid"},
		{"1000 claims", Mint(g.tb, a, manyClaims, WithHeader("typ", g.typ), issuerKID), "signature_invalid"},
		{"claim nested 4000 deep", MintRaw(g.tb, a, h, deep(4000)), "signature_invalid"},
		{"header nested 4000 deep", MintRaw(g.tb, a, addMember(h, `"deep":`+nest(4000)), MustJSON(g.tb, g.claims)), "signature_invalid"},
		{"payload of 6000 open brackets", MintRaw(g.tb, a, h, []byte(strings.Repeat("[", 6000))), "token_malformed"},
	}
}

// addMember inserts a JSON member after the opening brace of obj.
func addMember(obj []byte, member string) []byte {
	return append([]byte("{"+member+","), obj[1:]...)
}
