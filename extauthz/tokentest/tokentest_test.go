package tokentest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

func TestMintedTokensVerifyWithThePublicKey(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  *tokentest.Key
		alg  jwa.SignatureAlgorithm
	}{
		{"RSA key signs RS256", tokentest.NewRSAKey(t, "rsa"), jwa.RS256()},
		{"EC key signs ES256", tokentest.NewECKey(t, "ec"), jwa.ES256()},
		{"Ed25519 key signs EdDSA", tokentest.NewEdKey(t, "ed"), jwa.EdDSA()},
		{"wrapped P-384 key signs ES384", tokentest.NewKeyFrom(t, p384, "p384", "ES384"), jwa.ES384()},
		{"HMAC secret signs HS256", tokentest.NewKeyFrom(t, []byte("0123456789abcdef0123456789abcdef"), "hs", "HS256"), jwa.HS256()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := tokentest.Claims("https://issuer.test", "api", time.Hour)
			raw := tokentest.Mint(t, tt.key, claims)
			payload, err := jws.Verify([]byte(raw), jws.WithKey(tt.alg, tt.key.Public))
			if err != nil {
				t.Fatalf("jws.Verify: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(payload, &got); err != nil {
				t.Fatal(err)
			}
			if got["iss"] != "https://issuer.test" || got["jti"] != claims["jti"] {
				t.Errorf("payload = %v, want the minted claims %v", got, claims)
			}
			hdr := header(t, raw)
			if hdr["alg"] != tt.key.Alg || hdr["kid"] != tt.key.KID || hdr["typ"] != "JWT" {
				t.Errorf("header = %v, want alg %s, kid %s, typ JWT", hdr, tt.key.Alg, tt.key.KID)
			}
		})
	}
}

func TestMintOptionsShapeTheHeader(t *testing.T) {
	k := tokentest.NewECKey(t, "ec-1")
	claims := tokentest.Claims("https://issuer.test", "api", time.Hour)
	tests := []struct {
		name string
		opts []tokentest.MintOption
		want map[string]any
	}{
		{"defaults", nil, map[string]any{"alg": "ES256", "kid": "ec-1", "typ": "JWT"}},
		{"WithoutKID drops kid", []tokentest.MintOption{tokentest.WithoutKID()}, map[string]any{"alg": "ES256", "typ": "JWT"}},
		{"WithHeader overrides alg", []tokentest.MintOption{tokentest.WithHeader("alg", "none")}, map[string]any{"alg": "none", "kid": "ec-1", "typ": "JWT"}},
		{"WithHeader adds crit", []tokentest.MintOption{tokentest.WithHeader("crit", []any{"exp"})}, map[string]any{"alg": "ES256", "kid": "ec-1", "typ": "JWT", "crit": []any{"exp"}}},
		{"WithHeader overrides typ", []tokentest.MintOption{tokentest.WithHeader("typ", "at+jwt")}, map[string]any{"alg": "ES256", "kid": "ec-1", "typ": "at+jwt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := header(t, tokentest.Mint(t, k, claims, tt.opts...))
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("header = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestKeyWithoutKIDMintsNoKID(t *testing.T) {
	k := tokentest.NewEdKey(t, "")
	if _, ok := header(t, tokentest.Mint(t, k, map[string]any{}))["kid"]; ok {
		t.Error("token minted with a kid-less key has a kid header")
	}
	if _, ok := k.Public.KeyID(); ok {
		t.Error("kid-less key publishes a kid")
	}
}

func TestClaimsAreTypicalAccessTokenClaims(t *testing.T) {
	before := time.Now().Unix()
	c := tokentest.Claims("https://issuer.test", []string{"a", "b"}, time.Hour)
	after := time.Now().Unix()
	for _, name := range []string{"iss", "aud", "sub", "client_id", "iat", "exp", "jti"} {
		if _, ok := c[name]; !ok {
			t.Errorf("claim %q missing", name)
		}
	}
	iat, exp := c["iat"].(int64), c["exp"].(int64)
	if iat < before || iat > after || exp-iat != 3600 {
		t.Errorf("iat = %d, exp = %d; want iat now and exp an hour later", iat, exp)
	}
	if c2 := tokentest.Claims("x", "y", time.Hour); c2["jti"] == c["jti"] {
		t.Error("two Claims calls share a jti")
	}
}

func TestJWKSPublishesOnlyPublicKeys(t *testing.T) {
	keys := []*tokentest.Key{tokentest.NewRSAKey(t, "r"), tokentest.NewECKey(t, "e"), tokentest.NewEdKey(t, "d")}
	for _, src := range []struct {
		name string
		data func() []byte
	}{
		{"JWKS", func() []byte { return tokentest.JWKS(t, keys...) }},
		{"WriteJWKSFile", func() []byte {
			b, err := os.ReadFile(tokentest.WriteJWKSFile(t, t.TempDir(), keys...))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
	} {
		t.Run(src.name, func(t *testing.T) {
			set, err := jwk.Parse(src.data())
			if err != nil {
				t.Fatal(err)
			}
			if set.Len() != len(keys) {
				t.Fatalf("set has %d keys, want %d", set.Len(), len(keys))
			}
			for _, want := range keys {
				k, ok := set.LookupKeyID(want.KID)
				if !ok {
					t.Fatalf("no key %q", want.KID)
				}
				if private, err := jwk.IsPrivateKey(k); err != nil || private {
					t.Errorf("key %q: private = %v, %v; want a public key", want.KID, private, err)
				}
				if alg, _ := k.Algorithm(); alg.String() != want.Alg {
					t.Errorf("key %q: alg = %v, want %s", want.KID, alg, want.Alg)
				}
				if use, _ := k.KeyUsage(); use != "sig" {
					t.Errorf("key %q: use = %q, want sig", want.KID, use)
				}
			}
		})
	}
}

func TestJWKSServer(t *testing.T) {
	k1, k2 := tokentest.NewECKey(t, "k1"), tokentest.NewECKey(t, "k2")
	srv := tokentest.NewJWKSServer(t, k1)

	status, body := get(t, srv.JWKSURI())
	if status != http.StatusOK || !strings.Contains(body, `"k1"`) {
		t.Fatalf("GET jwks = %d %s, want 200 with k1", status, body)
	}

	srv.SetKeys(k2)
	if _, body := get(t, srv.JWKSURI()); strings.Contains(body, `"k1"`) || !strings.Contains(body, `"k2"`) {
		t.Errorf("after SetKeys(k2) the JWKS is %s", body)
	}

	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	_, body = get(t, srv.URL+"/.well-known/openid-configuration")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != srv.URL || doc.JWKSURI != srv.JWKSURI() {
		t.Errorf("discovery = %+v, want issuer %s and jwks_uri %s", doc, srv.URL, srv.JWKSURI())
	}
	srv.SetIssuer("https://elsewhere.test")
	_, body = get(t, srv.URL+"/.well-known/openid-configuration")
	if !strings.Contains(body, "https://elsewhere.test") {
		t.Errorf("after SetIssuer the discovery document is %s", body)
	}

	srv.Fail(true)
	if status, _ := get(t, srv.JWKSURI()); status != http.StatusInternalServerError {
		t.Errorf("failing JWKS status = %d, want 500", status)
	}
	if status, _ := get(t, srv.URL+"/.well-known/openid-configuration"); status != http.StatusInternalServerError {
		t.Errorf("failing discovery status = %d, want 500", status)
	}
	srv.Fail(false)

	if got := srv.Requests(); got != 3 {
		t.Errorf("Requests() = %d, want 3 JWKS requests", got)
	}
	if got := srv.DiscoveryRequests(); got != 3 {
		t.Errorf("DiscoveryRequests() = %d, want 3", got)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func header(t *testing.T, raw string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestJWKSServerModes(t *testing.T) {
	k1, k2 := tokentest.NewECKey(t, "k1"), tokentest.NewECKey(t, "k2")
	srv := tokentest.NewJWKSServer(t, k1)
	get(t, srv.JWKSURI())
	srv.SetMode(tokentest.ServeGarbage)
	if _, body := get(t, srv.JWKSURI()); strings.Contains(body, `"keys"`) {
		t.Errorf("garbage mode served %s", body)
	}
	srv.SetMode(tokentest.ServeHangup)
	if resp, err := http.Get(srv.JWKSURI()); err == nil {
		resp.Body.Close()
		t.Errorf("hang-up mode answered %d", resp.StatusCode)
	}
	srv.SetMode(tokentest.ServeKeys)
	srv.SetKeys(k1, k2)
	get(t, srv.JWKSURI())

	served := srv.ServedKeys()
	if len(served) != 2 || !slices.Equal(served[0].KIDs, []string{"k1"}) || !slices.Equal(served[1].KIDs, []string{"k1", "k2"}) {
		t.Fatalf("ServedKeys() = %+v, want the two answers with keys only", served)
	}
	if served[1].At.Before(served[0].At) {
		t.Error("ServedKeys is not in order")
	}
}

func TestCAIssuesCertificatesThatVerify(t *testing.T) {
	ca := tokentest.NewCA(t, "test CA")
	srv := ca.Server([]string{"claimcheck.test", "127.0.0.1"})
	cli := ca.Client("envoy")
	if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "claimcheck.test"}); err != nil {
		t.Errorf("server certificate by name: %v", err)
	}
	if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("server certificate by IP: %v", err)
	}
	if _, err := cli.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := cli.Cert.Verify(x509.VerifyOptions{Roots: tokentest.NewCA(t, "other").Pool()}); err == nil {
		t.Error("a certificate verified against another CA")
	}
	if srv.Cert.SerialNumber.Cmp(ca.Server([]string{"claimcheck.test"}).Cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}

	dir := t.TempDir()
	certFile, keyFile := srv.WriteFiles(t, dir, "server")
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Errorf("written files do not load: %v", err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, err := x509.ParseCertificate(srv.TLS(t).Certificate[0]); err != nil {
		t.Errorf("TLS(): %v", err)
	}
	expired := ca.Server([]string{"x"}, tokentest.ValidBetween(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)))
	if !expired.Cert.NotAfter.Before(time.Now()) {
		t.Error("ValidBetween was not applied")
	}
}
