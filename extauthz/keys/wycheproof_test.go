package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// vectors returns the path of the shared test vectors directory sub. The
// directory lives outside the repository: without it the test is skipped,
// except in CI, where it must be present.
func vectors(t *testing.T, sub string) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "vectors", sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("test vectors missing in CI: %v", err)
		}
		t.Skipf("test vectors not available (%v); they are read from ../shared/vectors beside the repository", err)
	}
	return dir
}

var hmacAlgorithms = []string{"HS256", "HS384", "HS512"}

// keySet builds what claimcheck would verify with for raw, a JWK or a
// JWKS, and the allowlist to use.
//
// A single symmetric key is an issuer's HMAC secret: it goes into a set of
// its own, as the keys package's HMAC source does, with every HMAC
// algorithm allowed. Anything else is a published key set and goes
// through ParseSet (which drops symmetric keys), with the default
// allowlist of every asymmetric algorithm.
//
// The widest allowlist of each kind gives the most meaningful check: the
// header's alg is then held against the key alone (its type, curve, own
// "alg" and, for HMAC, length), which is what the wrong-primitive, key
// confusion, mismatched-alg and short-key cases probe. An allowlist
// narrowed to the group's algorithm would reject most of those before any
// key was consulted and prove nothing about key selection.
func keySet(raw json.RawMessage) (jwk.Set, []string, error) {
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &jwks); err != nil {
		return nil, nil, err
	}
	if jwks.Keys == nil {
		jwks.Keys = []json.RawMessage{raw}
	}
	if len(jwks.Keys) == 1 {
		var k struct {
			Kty string `json:"kty"`
		}
		if err := json.Unmarshal(jwks.Keys[0], &k); err != nil {
			return nil, nil, err
		}
		if k.Kty == "oct" {
			key, err := jwk.ParseKey(jwks.Keys[0])
			if err != nil {
				return nil, nil, err
			}
			set := jwk.NewSet()
			if err := set.AddKey(key); err != nil {
				return nil, nil, err
			}
			return set, hmacAlgorithms, nil
		}
	}
	b, err := json.Marshal(jwks)
	if err != nil {
		return nil, nil, err
	}
	set, err := ParseSet(b, nil)
	return set, nil, err
}

// deliberate lists, per file, the valid Wycheproof cases claimcheck
// rejects on purpose, with the reason. A listed case that is accepted
// fails the test, so the list cannot outlive its reasons.
var deliberate = map[string]map[int]string{
	"json_web_signature_test.json": {
		346: `header alg PS384 on a key whose JWK "alg" pins PS256: a key is used only with its own algorithm`,
		350: `header alg PS384 on a key whose JWK "alg" pins PS256: a key is used only with its own algorithm`,
		347: `the key's "alg" is "ES521", which is no JWS algorithm; jwx cannot parse the key (like json_web_key_test tcId 19, which must be rejected)`,
		351: `the key's "alg" is "ES521", which is no JWS algorithm; jwx cannot parse the key (like json_web_key_test tcId 19, which must be rejected)`,
		372: `a character outside the base64url alphabet inside the header: segments must be strict unpadded base64url`,
		373: `a character outside the base64url alphabet inside the payload: segments must be strict unpadded base64url`,
	},
	"json_web_key_test.json": {
		2: "a key set of two HMAC secrets: secrets are never taken from a key set (ParseSet drops them), and an issuer has one",
	},
	"json_web_crypto_test.json": {
		48: "a key set of two HMAC secrets: secrets are never taken from a key set (ParseSet drops them), and an issuer has one",
	},
}

// contradictory lists, per file, invalid Wycheproof cases whose jws and
// key are identical to those of a valid case: defects of the vector file
// (the padding the comment describes is missing). No verifier can satisfy
// both, so these are not judged; the test checks they still duplicate
// the valid case.
var contradictory = map[string]map[int]int{
	"json_web_signature_test.json": {
		367: 357, // invalidBase64Padding
		370: 357, // invalidBase64PaddingInPayload
	},
}

type wycheproofFile struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		Comment string          `json:"comment"`
		Public  json.RawMessage `json:"public"`
		Private json.RawMessage `json:"private"`
		Tests   []struct {
			TcID    int             `json:"tcId"`
			Comment string          `json:"comment"`
			JWS     json.RawMessage `json:"jws"`
			JWE     json.RawMessage `json:"jwe"`
			Result  string          `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproof runs Project Wycheproof's JSON Web Crypto vectors through
// ParseSet and token.VerifySignature: every invalid case must be rejected,
// every valid one accepted unless listed in deliberate.
func TestWycheproof(t *testing.T) {
	dir := vectors(t, "wycheproof")
	for _, name := range []string{"json_web_signature_test.json", "json_web_key_test.json", "json_web_crypto_test.json"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			var f wycheproofFile
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatal(err)
			}
			listed := deliberate[name]
			jwsOf := make(map[int]string)
			for _, g := range f.TestGroups {
				for _, tc := range g.Tests {
					jwsOf[tc.TcID] = string(tc.JWS)
				}
			}
			var seen, accepted, rejected, deliberatelyRejected, jwe, defective int
			for _, g := range f.TestGroups {
				raw := g.Public
				if raw == nil {
					raw = g.Private
				}
				set, algs, setErr := keySet(raw)
				for _, tc := range g.Tests {
					seen++
					if tc.JWE != nil {
						jwe++
						continue
					}
					if twin, ok := contradictory[name][tc.TcID]; ok {
						if jwsOf[twin] != string(tc.JWS) {
							t.Errorf("tcId %d is listed as a duplicate of tcId %d, but its jws differs", tc.TcID, twin)
						}
						defective++
						continue
					}
					err := setErr
					if err == nil {
						err = verifyVector(tc.JWS, set, algs)
					}
					reason, isListed := listed[tc.TcID]
					switch {
					case tc.Result != "valid" && tc.Result != "invalid":
						t.Errorf("tcId %d: unknown result %q", tc.TcID, tc.Result)
					case isListed && tc.Result != "valid":
						t.Errorf("tcId %d is %s but listed as deliberately rejected", tc.TcID, tc.Result)
					case err == nil && tc.Result == "invalid":
						t.Errorf("tcId %d (%s, group %s): invalid, but accepted", tc.TcID, tc.Comment, g.Comment)
					case err == nil && isListed:
						t.Errorf("tcId %d (%s, group %s): accepted, but listed as deliberately rejected: %s", tc.TcID, tc.Comment, g.Comment, reason)
					case err != nil && tc.Result == "valid" && !isListed:
						t.Errorf("tcId %d (%s, group %s): valid, but rejected: %v", tc.TcID, tc.Comment, g.Comment, err)
					case err != nil && setErr == nil && token.Reason(err) == "internal_error":
						t.Errorf("tcId %d (%s, group %s): rejection wraps no sentinel: %v", tc.TcID, tc.Comment, g.Comment, err)
					}
					switch {
					case err == nil:
						accepted++
					case isListed:
						deliberatelyRejected++
					default:
						rejected++
					}
				}
			}
			if seen != f.NumberOfTests {
				t.Errorf("read %d tests, the file declares %d", seen, f.NumberOfTests)
			}
			for tcID := range listed {
				if tcID < 1 || tcID > seen {
					t.Errorf("deliberately rejected tcId %d is not in the file", tcID)
				}
			}
			t.Logf("%s: %d tests: %d accepted, %d rejected, %d valid but deliberately rejected, %d contradicting a valid twin, %d JWE skipped (claimcheck handles no encrypted tokens)",
				name, seen, accepted, rejected, deliberatelyRejected, defective, jwe)
		})
	}
}

// verifyVector verifies a test's jws, a compact string or, for JSON
// serialization cases, an object, which is passed on as its JSON text.
func verifyVector(raw json.RawMessage, set jwk.Set, algs []string) error {
	var compact string
	if err := json.Unmarshal(raw, &compact); err != nil {
		compact = string(raw)
	}
	_, _, err := token.VerifySignature(compact, set, algs)
	return err
}

type cookbookExample struct {
	Input struct {
		Payload string          `json:"payload"`
		Key     json.RawMessage `json:"key"`
		Alg     json.RawMessage `json:"alg"`
	} `json:"input"`
	Signing json.RawMessage `json:"signing"`
	Output  struct {
		Compact  string          `json:"compact"`
		JSON     json.RawMessage `json:"json"`
		JSONFlat json.RawMessage `json:"json_flat"`
	} `json:"output"`
}

type cookbookSigning struct {
	SigInput string `json:"sig-input"`
	Sig      string `json:"sig"`
}

// nth returns element i of raw if it is a JSON array, else raw itself (for
// i == 0): the cookbook lists keys and signatures singly or as arrays.
func nth(t *testing.T, raw json.RawMessage, i int) json.RawMessage {
	t.Helper()
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		if i != 0 {
			t.Fatalf("element %d of a non-array", i)
		}
		return raw
	}
	if i >= len(list) {
		t.Fatalf("element %d of %d", i, len(list))
	}
	return list[i]
}

// TestJOSECookbook checks the RFC 7520 signature examples: the compact
// forms verify with their keys, and detached, unprotected, unencoded
// (RFC 7797 b64=false) and JSON-serialized forms are refused.
func TestJOSECookbook(t *testing.T) {
	dir := vectors(t, "jose-cookbook")
	const (
		compact      = "output.compact"
		signingInput = "signing input and signature"
		reencoded    = "protected header, base64url payload, signature"
	)
	tests := []struct {
		name string
		file string
		sig  int    // which signature of the example
		form string // how the token is assembled from the example
		want error  // nil: accepted, with the example's payload and kid
	}{
		{"RS256", "jws/4_1.rsa_v15_signature.json", 0, compact, nil},
		{"PS384 with a hash-length salt", "jws/4_2.rsa-pss_signature.json", 0, compact, nil},
		{"ES512", "jws/4_3.ecdsa_signature.json", 0, compact, nil},
		{"HS256", "jws/4_4.hmac-sha2_integrity_protection.json", 0, compact, nil},
		{"EdDSA on a key without kid", "curve25519/jws.json", 0, compact, nil},
		{"HS256 whose kid was only in the unprotected header", "jws/4_6.protecting_specific_header_fields.json", 0, signingInput, nil},
		{"RS256 signature of a multi-signature example, without kid", "jws/4_8.multiple_signatures.json", 0, signingInput, nil},
		{"HS256 signature of a multi-signature example", "jws/4_8.multiple_signatures.json", 2, signingInput, nil},
		{"detached payload", "jws/4_5.signature_with_detached_content.json", 0, compact, token.ErrSignature},
		{"no protected header", "jws/4_7.protecting_content_only.json", 0, signingInput, token.ErrMalformed},
		{"no protected header in a multi-signature example", "jws/4_8.multiple_signatures.json", 1, signingInput, token.ErrMalformed},
		{"b64=false with the payload unencoded", "rfc7797/hmac-sha2_b64_false.json", 0, compact, token.ErrMalformed},
		{"b64=false and crit with the payload encoded", "rfc7797/hmac-sha2_b64_false.json", 0, reencoded, token.ErrUnsupportedHeader},
		{"b64=false without crit with the payload encoded", "rfc7797/4.2.hmac-sha2_b64_false.json", 0, reencoded, token.ErrUnsupportedHeader},
	}
	examples := make(map[string]*cookbookExample)
	read := func(t *testing.T, file string) *cookbookExample {
		t.Helper()
		if ex, ok := examples[file]; ok {
			return ex
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		ex := &cookbookExample{}
		if err := json.Unmarshal(b, ex); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		examples[file] = ex
		return ex
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := read(t, tt.file)
			key := nth(t, ex.Input.Key, tt.sig)
			set, algs, err := keySet(key)
			if err != nil {
				t.Fatalf("key: %v", err)
			}
			var sig cookbookSigning
			if err := json.Unmarshal(nth(t, ex.Signing, tt.sig), &sig); err != nil {
				t.Fatal(err)
			}
			var raw string
			switch tt.form {
			case compact:
				raw = ex.Output.Compact
			case signingInput:
				raw = sig.SigInput + "." + sig.Sig
			case reencoded:
				var out struct {
					Signatures []struct {
						Protected string `json:"protected"`
					} `json:"signatures"`
				}
				if err := json.Unmarshal(ex.Output.JSON, &out); err != nil || len(out.Signatures) == 0 {
					t.Fatalf("output.json: %v", err)
				}
				raw = out.Signatures[0].Protected + "." + base64.RawURLEncoding.EncodeToString([]byte(ex.Input.Payload)) + "." + sig.Sig
			}
			if raw == "" {
				t.Fatalf("%s has no %s", tt.file, tt.form)
			}
			payload, kid, err := token.VerifySignature(raw, set, algs)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("VerifySignature error = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifySignature: %v", err)
			}
			if !bytes.Equal(payload, []byte(ex.Input.Payload)) {
				t.Errorf("payload = %q, want %q", payload, ex.Input.Payload)
			}
			var k struct {
				Kid string `json:"kid"`
			}
			if err := json.Unmarshal(key, &k); err != nil {
				t.Fatal(err)
			}
			if kid != k.Kid {
				t.Errorf("kid = %q, want %q", kid, k.Kid)
			}
		})
	}

	t.Run("JSON serializations", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, path := range files {
			rel, _ := filepath.Rel(dir, path)
			ex := read(t, rel)
			if ex.Input.Key == nil || ex.Signing == nil {
				continue // a key example, not a signature
			}
			set, algs, err := keySet(nth(t, ex.Input.Key, 0))
			if err != nil {
				t.Fatalf("%s: key: %v", rel, err)
			}
			for _, form := range []json.RawMessage{ex.Output.JSON, ex.Output.JSONFlat} {
				if form == nil {
					continue
				}
				n++
				if _, _, err := token.VerifySignature(string(form), set, algs); !errors.Is(err, token.ErrMalformed) {
					t.Errorf("%s: JSON serialization: error = %v, want %v", rel, err, token.ErrMalformed)
				}
			}
		}
		if n == 0 {
			t.Fatal("found no JSON serializations")
		}
		t.Logf("%d JSON serializations rejected", n)
	})
}
