package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/claimcheck/claimcheck/extauthz/issuer"
)

const tokenUsage = `usage: claimcheck token mint --key FILE --claims JSON [--ttl 1h] [--typ at+jwt]
       claimcheck token keygen --alg ES256 --kid ID --private FILE --jwks FILE

mint signs a JWT with a private key (a JWK or PEM file). iat and exp are added
when the claims lack them (exp = now + ttl). For development and tests: real
tokens come from your identity provider.

keygen writes a new private JWK (mode 0600) and the JWKS with its public half.
`

func tokenCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "mint":
		err = mintCmd(args[1:], stdout, stderr)
	case "keygen":
		err = keygenCmd(args[1:], stdout, stderr)
	default:
		err = fmt.Errorf("unknown token command %q\n\n%s", args[0], tokenUsage)
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck: %v\n", err)
		return exitUsage
	}
	return exitOK
}

func mintCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token mint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", "", "private key: a JWK (JSON) or PEM file")
	claimsJSON := fs.String("claims", "{}", "claims as a JSON object")
	ttl := fs.Duration("ttl", time.Hour, "lifetime when the claims have no exp")
	typ := fs.String("typ", "at+jwt", `"typ" header ("" to omit)`)
	kid := fs.String("kid", "", `"kid" header (default: the JWK's kid)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyPath == "" {
		return errors.New("token mint: --key is required")
	}
	key, err := readPrivateKey(*keyPath)
	if err != nil {
		return err
	}
	alg, err := signingAlgorithm(key)
	if err != nil {
		return fmt.Errorf("key %s: %w", *keyPath, err)
	}

	claims := map[string]any{}
	dec := json.NewDecoder(strings.NewReader(*claimsJSON))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return fmt.Errorf("--claims: expected a JSON object: %w", err)
	}
	now := time.Now()
	if _, ok := claims["iat"]; !ok {
		claims["iat"] = now.Unix()
	}
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = now.Add(*ttl).Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return fmt.Errorf("--claims: %w", err)
	}

	hdr := jws.NewHeaders()
	if *typ != "" {
		if err := hdr.Set(jws.TypeKey, *typ); err != nil {
			return err
		}
	}
	if *kid != "" {
		if err := key.Set(jwk.KeyIDKey, *kid); err != nil {
			return err
		}
	}
	signed, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	fmt.Fprintln(stdout, string(signed))
	return nil
}

func readPrivateKey(path string) (jwk.Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var key jwk.Key
	if strings.Contains(string(b), "-----BEGIN") {
		key, err = jwk.ParseKey(b, jwk.WithPEM(true))
	} else {
		key, err = jwk.ParseKey(b)
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	if private, err := jwk.IsPrivateKey(key); err != nil || !private {
		return nil, fmt.Errorf("key %s: expected a private RSA, EC or OKP key", path)
	}
	return key, nil
}

// signingAlgorithm is the JWK's alg, or the usual one for its type.
func signingAlgorithm(key jwk.Key) (jwa.SignatureAlgorithm, error) {
	if a, ok := key.Algorithm(); ok {
		if sa, ok := jwa.LookupSignatureAlgorithm(a.String()); ok {
			return sa, nil
		}
		return jwa.SignatureAlgorithm{}, fmt.Errorf("alg %q is not a signature algorithm", a.String())
	}
	algs, err := jws.AlgorithmsForKey(key)
	if err != nil || len(algs) == 0 {
		return jwa.SignatureAlgorithm{}, fmt.Errorf("no signature algorithm for this key: %v", err)
	}
	for _, want := range []jwa.SignatureAlgorithm{jwa.RS256(), jwa.ES256(), jwa.ES384(), jwa.ES512(), jwa.EdDSA()} {
		for _, a := range algs {
			if a == want {
				return a, nil
			}
		}
	}
	return algs[0], nil
}

func keygenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	alg := fs.String("alg", "ES256", "RS256, PS256, ES256, ES384, ES512 or EdDSA")
	kid := fs.String("kid", "", "key ID (default: the key's SHA-256 thumbprint)")
	privPath := fs.String("private", "", "file to write the private JWK to (mode 0600)")
	jwksPath := fs.String("jwks", "", "file to write the public JWKS to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *privPath == "" || *jwksPath == "" {
		return errors.New("token keygen: --private and --jwks are required")
	}
	priv, err := issuer.NewPrivateKey(*alg)
	if err != nil {
		return fmt.Errorf("--alg: %w", err)
	}
	if *kid != "" {
		if err := priv.Set(jwk.KeyIDKey, *kid); err != nil {
			return err
		}
	}
	pub, err := priv.PublicKey()
	if err != nil {
		return err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return err
	}
	privJSON, err := json.MarshalIndent(priv, "", "  ")
	if err != nil {
		return err
	}
	setJSON, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*privPath, append(privJSON, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(*jwksPath, append(setJSON, '\n'), 0o644); err != nil {
		return err
	}
	k, _ := priv.KeyID()
	fmt.Fprintf(stdout, "wrote %s (private, kid %s) and %s\n", *privPath, k, *jwksPath)
	return nil
}
