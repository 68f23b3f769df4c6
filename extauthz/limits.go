package extauthz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/proto"
)

// Reason codes of requests refused by a limit.
const (
	// ReasonHeadersTooLarge: more request headers, or more header bytes,
	// than Config.MaxHeaders or Config.MaxHeaderBytes allow (431).
	ReasonHeadersTooLarge = "headers_too_large"
	// ReasonBodyTooLarge: a request body larger than Config.MaxBodyBytes (413).
	ReasonBodyTooLarge = "body_too_large"
	// ReasonDeadline: the caller's deadline, or Config.CheckTimeout, passed
	// before the decision was made (503).
	ReasonDeadline = "deadline_exceeded"
)

// Input keys of the request body, as opa-envoy-plugin names them.
var kParsedBody, kTruncatedBody = ast.StringTerm("parsed_body"), ast.StringTerm("truncated_body")

// bodyInput is the request body as the policy sees it.
type bodyInput struct {
	parsed    *ast.Term // null when the body is not JSON or a form, or is truncated
	truncated bool
}

// headerLimit denies a request with more headers, or more header bytes
// (names and values, pseudo-headers such as :path included), than
// configured. Dropping the excess instead would let a client hide a header
// a policy denies on, so it is all or nothing.
func (a *Authorizer) headerLimit(r *request) (Decision, bool) {
	if n := a.cfg.MaxHeaders; n > 0 && len(r.headers) > n {
		return a.deny(http.StatusRequestHeaderFieldsTooLarge, ReasonHeadersTooLarge, "invalid_request",
			fmt.Sprintf("the request has %d headers, more than the %d allowed", len(r.headers), n), nil), false
	}
	if n := a.cfg.MaxHeaderBytes; n > 0 {
		size := 0
		for k, v := range r.headers {
			size += len(k) + len(v)
		}
		if size > n {
			return a.deny(http.StatusRequestHeaderFieldsTooLarge, ReasonHeadersTooLarge, "invalid_request",
				fmt.Sprintf("the request headers are %d bytes, more than the %d allowed", size, n), nil), false
		}
	}
	return Decision{}, true
}

// requestBody applies Config.MaxBodyBytes to the body Envoy sent
// (with_request_body). Without a configured size the body is left out of
// the input entirely: req is returned without it and body is nil. With
// one, a larger body is denied and a smaller one parsed.
func (a *Authorizer) requestBody(req *authv3.CheckRequest, r *request) (_ *authv3.CheckRequest, body *bodyInput, d Decision, ok bool) {
	h := req.GetAttributes().GetRequest().GetHttp()
	raw := []byte(h.GetBody())
	if len(raw) == 0 {
		raw = h.GetRawBody()
	}
	n := len(h.GetBody()) + len(h.GetRawBody())
	if a.cfg.MaxBodyBytes <= 0 {
		if n > 0 {
			req = proto.Clone(req).(*authv3.CheckRequest)
			hc := req.GetAttributes().GetRequest().GetHttp()
			hc.Body, hc.RawBody = "", nil
		}
		return req, nil, Decision{}, true
	}
	if n > a.cfg.MaxBodyBytes {
		return nil, nil, a.deny(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "invalid_request",
			fmt.Sprintf("the request body is %d bytes, more than the %d allowed", n, a.cfg.MaxBodyBytes), nil), false
	}
	body, err := parseBody(r.headers, raw)
	if err != nil {
		return nil, nil, a.deny(http.StatusBadRequest, ReasonBadRequest, "invalid_request", "request body: "+err.Error(), nil), false
	}
	return req, body, Decision{}, true
}

// parseBody reads the body as opa-envoy-plugin does for input.parsed_body:
// JSON for application/json, a map of value lists for
// application/x-www-form-urlencoded and multipart/form-data (a part sent as
// application/json parsed as JSON), null otherwise. A body shorter than
// Content-Length says, or that Envoy marks partial, is truncated and not
// parsed.
func parseBody(headers map[string]string, b []byte) (*bodyInput, error) {
	out := &bodyInput{parsed: ast.NullTerm()}
	if cl, ok := headers["content-length"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("content-length %q is not a length", cl)
		}
		out.truncated = n > int64(len(b))
	}
	if strings.EqualFold(headers["x-envoy-auth-partial-body"], "true") {
		out.truncated = true
	}
	ct := headers["content-type"]
	if out.truncated || len(b) == 0 || ct == "" {
		return out, nil
	}
	var err error
	switch {
	case strings.Contains(ct, "application/json"):
		out.parsed, err = jsonBodyTerm(b)
	case strings.Contains(ct, "application/x-www-form-urlencoded"):
		var q url.Values
		if q, err = url.ParseQuery(string(b)); err == nil {
			out.parsed = valuesTerm(q)
		}
	case strings.Contains(ct, "multipart/form-data"):
		out.parsed, err = multipartTerm(ct, b)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// jsonBodyTerm parses b as exactly one JSON value.
func jsonBodyTerm(b []byte) (*ast.Term, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not JSON: data after the value")
	}
	return jsonTerm(v)
}

// multipartTerm returns the form fields of a multipart body.
func multipartTerm(contentType string, b []byte) (*ast.Term, error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("content-type: %w", err)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return ast.NullTerm(), nil
	}
	fields := map[string][]*ast.Term{}
	var names []string
	mr := multipart.NewReader(bytes.NewReader(b), boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("multipart: %w", err)
		}
		name := p.FormName()
		if name == "" {
			continue
		}
		value, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("multipart part %q: %w", name, err)
		}
		t := ast.StringTerm(string(value))
		if strings.Contains(p.Header.Get("Content-Type"), "application/json") {
			if t, err = jsonBodyTerm(value); err != nil {
				return nil, fmt.Errorf("multipart part %q: %w", name, err)
			}
		}
		if _, seen := fields[name]; !seen {
			names = append(names, name)
		}
		fields[name] = append(fields[name], t)
	}
	pairs := make([][2]*ast.Term, 0, len(names))
	for _, n := range names {
		pairs = append(pairs, [2]*ast.Term{ast.StringTerm(n), ast.ArrayTerm(fields[n]...)})
	}
	return ast.ObjectTerm(pairs...), nil
}

// withCheckTimeout bounds ctx by Config.CheckTimeout; the caller's own
// deadline still applies when it is sooner.
func (a *Authorizer) withCheckTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.cfg.CheckTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, a.cfg.CheckTimeout)
}

// pastDeadline turns a decision made after ctx ended into a deny: the
// caller has given up, and an allow must never come from a Check that ran
// out of time. A deny that is about the request itself (a bad token, the
// policy's no) keeps its reason; one that says claimcheck could not decide
// (503) is put down to the deadline, its likely cause.
func (a *Authorizer) pastDeadline(ctx context.Context, d *Decision) {
	if ctx.Err() == nil || (!d.Allowed && d.Status != http.StatusServiceUnavailable) {
		return
	}
	n := a.unavailable(ReasonDeadline, "the decision was not made before the deadline")
	d.Allowed, d.DryRun = false, false
	d.Status, d.Reason, d.Description = n.Status, n.Reason, n.Description
	d.UpstreamHeaders, d.RemoveHeaders, d.ResponseHeaders, d.RemoveQueryParameters = nil, nil, nil, nil
	d.DenyHeaders, d.Body, d.DynamicMetadata = n.DenyHeaders, n.Body, n.DynamicMetadata
}
