package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/policy"
)

// explainFlag is --explain (notes) or --explain=MODE.
type explainFlag string

func (e *explainFlag) String() string { return string(*e) }

func (e *explainFlag) Set(s string) error {
	switch s {
	case "true":
		*e = policy.ExplainNotes
	case policy.ExplainNotes, policy.ExplainFails, policy.ExplainFull:
		*e = explainFlag(s)
	default:
		return fmt.Errorf("expected notes, fails or full, got %q", s)
	}
	return nil
}

func (e *explainFlag) IsBoolFlag() bool { return true }

// headerFlags collects repeated --header k=v flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return fmt.Sprint(map[string]string(h)) }

func (h headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		k, v, ok = strings.Cut(s, ":")
	}
	k = strings.ToLower(strings.TrimSpace(k))
	if !ok || k == "" {
		return fmt.Errorf("expected name=value, got %q", s)
	}
	h[k] = strings.TrimSpace(v)
	return nil
}

const checkUsage = `usage: claimcheck check --config FILE [--token TOKEN|-] [--method GET] [--path /] [--host H] [--header k=v]...
       claimcheck check --server ADDR [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [same request flags]

Makes one decision and prints the policy input and the decision as JSON.
With --config the decision is made in this process; with --server it is asked
of a running claimcheck over gRPC. Exit status: 0 allowed, 1 denied, 2 usage
or configuration error.
`

func checkCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkUsage); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "configuration file: decide in this process")
	server := fs.String("server", "", "address of a running claimcheck (host:port or unix:///path): ask it instead")
	tok := fs.String("token", "", `bearer token, sent as "Authorization: Bearer TOKEN"; "-" reads it from standard input`)
	method := fs.String("method", "GET", "request method")
	path := fs.String("path", "/", "request path, with query string if any")
	host := fs.String("host", "localhost", "request host")
	brief := fs.Bool("brief", false, "print one line (allowed|denied STATUS REASON: description) instead of JSON")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for remote keys to load (with --config)")
	var explain explainFlag
	fs.Var(&explain, "explain", "also print the policy's evaluation trace (with --config): --explain for notes, --explain=fails or --explain=full")
	headers := headerFlags{}
	fs.Var(headers, "header", "request header name=value (repeatable)")
	extensions := headerFlags{}
	fs.Var(extensions, "context", "Envoy per-route context_extensions name=value (repeatable), e.g. claimcheck_decision=orders/allow")
	var ct clientTLSFlags
	ct.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if (*cfgPath == "") == (*server == "") || fs.NArg() > 0 || (explain != "" && *server != "") || (ct.set() && *server == "") {
		fmt.Fprint(stderr, checkUsage)
		return exitUsage
	}

	raw := *tok
	if raw == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			fmt.Fprintf(stderr, "claimcheck: reading the token from standard input: %v\n", err)
			return exitUsage
		}
		raw = strings.TrimSpace(line)
	}
	if raw != "" {
		headers["authorization"] = "Bearer " + raw
	}
	req := checkRequest(*method, *path, *host, headers)
	req.Attributes.ContextExtensions = extensions

	var out checkOutput
	if *server != "" {
		creds, err := ct.credentials()
		if err != nil {
			fmt.Fprintf(stderr, "claimcheck: %v\n", err)
			return exitUsage
		}
		d, err := askServer(ctx, *server, req, creds)
		if err != nil {
			fmt.Fprintf(stderr, "claimcheck: %v\n", err)
			return exitUsage
		}
		out.Decision = d
	} else {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "claimcheck: %v\n", err)
			return exitUsage
		}
		// Only problems reach stderr; stdout is the JSON answer.
		log := newLogger(config.Log{Level: "warn", Format: "text"}, stderr)
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		a, err := build(bctx, cfg, log, buildOptions{})
		if err != nil {
			fmt.Fprintf(stderr, "claimcheck: config %s: %v\n", *cfgPath, err)
			return exitUsage
		}
		defer a.close()
		wctx, wcancel := context.WithTimeout(ctx, *wait)
		if !a.waitReady(wctx) {
			fmt.Fprintf(stderr, "claimcheck: keys not loaded after %s; deciding anyway (tokens of those issuers are denied)\n", *wait)
		}
		wcancel()
		d := a.authorizer.Explain(ctx, req)
		out.Input = d.Input
		out.Decision = decisionOutput(d)
		if explain != "" {
			if out.Explain, err = explainDecision(ctx, a, d, extensions[extauthz.ExtDecision], string(explain)); err != nil {
				fmt.Fprintf(stderr, "claimcheck: --explain: %v\n", err)
				return exitUsage
			}
		}
	}

	if *brief {
		fmt.Fprintln(stdout, out.Decision.line())
		for _, l := range out.Explain {
			fmt.Fprintln(stdout, l)
		}
	} else if err := writeJSON(stdout, out); err != nil {
		fmt.Fprintf(stderr, "claimcheck: %v\n", err)
		return exitUsage
	}
	if out.Decision.Allowed {
		return exitOK
	}
	return exitDeny
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// line is the --brief form of a decision.
func (d decisionJSON) line() string {
	verdict := "denied"
	if d.Allowed {
		verdict = "allowed"
	}
	s := fmt.Sprintf("%s %d %s", verdict, d.Status, d.Reason)
	if d.Description != "" {
		s += ": " + d.Description
	}
	for _, k := range sortedKeys(d.UpstreamHeaders) {
		s += fmt.Sprintf(" [%s: %s]", k, d.UpstreamHeaders[k])
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type checkOutput struct {
	Input    map[string]any `json:"input,omitempty"`
	Decision decisionJSON   `json:"decision"`
	Explain  []string       `json:"explain,omitempty"`
}

// explainDecision traces the policy's evaluation of d's input. A request
// denied before the policy ran has nothing to trace.
func explainDecision(ctx context.Context, a *app, d extauthz.Decision, rule, mode string) ([]string, error) {
	if d.Revision == "" {
		return []string{"(the policy was not evaluated: " + d.Reason + ")"}, nil
	}
	e, ok := a.policy.Policy().(*policy.Engine)
	if !ok {
		return nil, fmt.Errorf("no policy loaded")
	}
	input, err := ast.InterfaceToValue(d.Input)
	if err != nil {
		return nil, err
	}
	return e.Explain(ctx, rule, input, mode)
}

type decisionJSON struct {
	Allowed         bool              `json:"allowed"`
	Status          int               `json:"status"`
	Reason          string            `json:"reason"`
	Description     string            `json:"description,omitempty"`
	UpstreamHeaders map[string]string `json:"upstream_headers,omitempty"`
	RemoveHeaders   []string          `json:"remove_headers,omitempty"`
	RemoveQuery     []string          `json:"remove_query_parameters,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	DenyHeaders     map[string]string `json:"deny_headers,omitempty"`
	Body            string            `json:"body,omitempty"`
	DynamicMetadata map[string]any    `json:"dynamic_metadata,omitempty"`
}

func decisionOutput(d extauthz.Decision) decisionJSON {
	return decisionJSON{
		Allowed:         d.Allowed,
		Status:          d.Status,
		Reason:          d.Reason,
		Description:     d.Description,
		UpstreamHeaders: headerJSON(d.UpstreamHeaders),
		RemoveHeaders:   d.RemoveHeaders,
		RemoveQuery:     d.RemoveQueryParameters,
		ResponseHeaders: headerJSON(d.ResponseHeaders),
		DenyHeaders:     headerJSON(d.DenyHeaders),
		Body:            d.Body,
		DynamicMetadata: d.DynamicMetadata,
	}
}

// headerJSON joins repeated headers with ", " for display.
func headerJSON(hs []policy.Header) map[string]string {
	if len(hs) == 0 {
		return nil
	}
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		if prev, ok := m[h.Key]; ok {
			m[h.Key] = prev + ", " + h.Value
		} else {
			m[h.Key] = h.Value
		}
	}
	return m
}

// checkRequest builds the CheckRequest Envoy would send for this request.
func checkRequest(method, path, host string, headers map[string]string) *authv3.CheckRequest {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	h := map[string]string{":authority": host, ":method": method, ":path": path}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: socketAddress("127.0.0.1", 50000)},
		Destination: &authv3.AttributeContext_Peer{Address: socketAddress("127.0.0.1", 8080)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:       hex.EncodeToString(id),
			Method:   method,
			Path:     path,
			Host:     host,
			Scheme:   "http",
			Protocol: "HTTP/1.1",
			Headers:  h,
		}},
	}}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// askServer sends req to a running claimcheck over a connection with creds
// and reads its answer back into a decision.
func askServer(ctx context.Context, addr string, req *authv3.CheckRequest, creds credentials.TransportCredentials) (decisionJSON, error) {
	target := addr
	if !strings.HasPrefix(addr, "unix://") {
		target = "passthrough:///" + addr
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return decisionJSON{}, fmt.Errorf("server %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		return decisionJSON{}, fmt.Errorf("server %s: %w", addr, err)
	}
	var d decisionJSON
	if m := resp.GetDynamicMetadata().AsMap(); len(m) > 0 {
		d.DynamicMetadata = m
		if cc, ok := m["claimcheck"].(map[string]any); ok {
			d.Reason, _ = cc["reason"].(string)
		}
	}
	if ok := resp.GetOkResponse(); resp.GetStatus().GetCode() == 0 && resp.GetDeniedResponse() == nil {
		d.Allowed, d.Status = true, 200
		d.UpstreamHeaders = optionJSON(ok.GetHeaders())
		d.RemoveHeaders = ok.GetHeadersToRemove()
		d.RemoveQuery = ok.GetQueryParametersToRemove()
		d.ResponseHeaders = optionJSON(ok.GetResponseHeadersToAdd())
		return d, nil
	}
	denied := resp.GetDeniedResponse()
	d.Status = int(denied.GetStatus().GetCode())
	if d.Status == 0 {
		d.Status = 403
	}
	d.DenyHeaders = optionJSON(denied.GetHeaders())
	d.Body = denied.GetBody()
	var body struct {
		Description string `json:"error_description"`
	}
	if json.Unmarshal([]byte(d.Body), &body) == nil {
		d.Description = body.Description
	}
	return d, nil
}

func optionJSON(opts []*corev3.HeaderValueOption) map[string]string {
	hs := make([]policy.Header, len(opts))
	for i, o := range opts {
		hs[i] = policy.Header{Key: o.GetHeader().GetKey(), Value: o.GetHeader().GetValue()}
	}
	return headerJSON(hs)
}
