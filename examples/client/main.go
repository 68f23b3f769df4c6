// Command client is a service that calls a protected API with the OAuth 2.0
// client-credentials grant, the three steps of the guide claimcheck grew
// from: it gets an access token from the token endpoint, sends it as a
// Bearer token on every call, and the API (claimcheck in front of it)
// verifies it. golang.org/x/oauth2/clientcredentials keeps the token and
// fetches a new one only when it is about to expire.
//
//	CLIENT_SECRET=... go run ./examples/client -token-url http://127.0.0.1:9500/token \
//	    -client-id service-client-id -url http://127.0.0.1:9504/orders/42 -n 3
//
// The secret comes from the environment, not a flag, so it does not show in
// the process list. The exit status is 0 when every call got a 2xx answer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tokenURL := fs.String("token-url", "", "the issuer's token endpoint")
	clientID := fs.String("client-id", "", "this service's client_id (the secret is $CLIENT_SECRET)")
	scope := fs.String("scope", "", "scopes to request, space-separated (default: all the client may have)")
	api := fs.String("url", "", "the protected API URL to call")
	n := fs.Int("n", 3, "how many calls")
	every := fs.Duration("every", 0, "pause between calls")
	authStyle := fs.String("auth", "basic", "client authentication: basic (client_secret_basic) or post (client_secret_post)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	secret := os.Getenv("CLIENT_SECRET")
	if *tokenURL == "" || *clientID == "" || *api == "" || secret == "" || *n < 1 {
		fmt.Fprintln(stderr, "usage: CLIENT_SECRET=... client -token-url URL -client-id ID -url API_URL [-n 3] [-scope S] [-auth basic|post]")
		return 2
	}
	cfg := clientcredentials.Config{ClientID: *clientID, ClientSecret: secret, TokenURL: *tokenURL}
	switch *authStyle {
	case "basic":
		cfg.AuthStyle = oauth2.AuthStyleInHeader
	case "post":
		cfg.AuthStyle = oauth2.AuthStyleInParams
	default:
		fmt.Fprintf(stderr, "client: -auth: expected basic or post, got %q\n", *authStyle)
		return 2
	}
	if *scope != "" {
		cfg.Scopes = strings.Fields(*scope)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// Count the token requests, to show the token is reused. (The oauth2
	// client sends the API calls through this transport too.)
	var fetched atomic.Int32
	tokenHTTP := &http.Client{Timeout: 10 * time.Second, Transport: countingTransport{&fetched, *tokenURL}}
	client := cfg.Client(context.WithValue(ctx, oauth2.HTTPClient, tokenHTTP))
	client.Timeout = 10 * time.Second

	failed := 0
	for i := 1; i <= *n; i++ {
		status, body, err := call(ctx, client, *api)
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re):
			fmt.Fprintf(stdout, "call %d: no token: %s %s\n", i, re.ErrorCode, re.ErrorDescription)
			return 1
		case err != nil:
			fmt.Fprintf(stdout, "call %d: %v\n", i, err)
			failed++
		default:
			fmt.Fprintf(stdout, "call %d: %d %s\n", i, status, body)
			if status < 200 || status > 299 {
				failed++
			}
		}
		if i < *n && *every > 0 {
			select {
			case <-ctx.Done():
				return 1
			case <-time.After(*every):
			}
		}
	}
	fmt.Fprintf(stdout, "%d calls, %d failed, %d token(s) fetched\n", *n, failed, fetched.Load())
	if failed > 0 {
		return 1
	}
	return 0
}

// call GETs url with the client, which adds "Authorization: Bearer …".
func call(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// countingTransport counts the requests it sends to url.
type countingTransport struct {
	n   *atomic.Int32
	url string
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.String() == t.url {
		t.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}
