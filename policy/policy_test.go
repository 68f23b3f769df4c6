package policy

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

const authzDecision = "claimcheck/authz/decision"

// writeFiles creates the files (relative path => content) under a new
// temporary directory and returns it.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// authzModule returns a module in package claimcheck.authz with rules.
func authzModule(rules string) string {
	return "package claimcheck.authz\n\n" + rules + "\n"
}

// newEngine loads a policy directory made of files and fails the test on
// error.
func newEngine(t testing.TB, files map[string]string, decision string, opts ...Option) *Engine {
	t.Helper()
	dir := writeFiles(t, files)
	e, err := New(context.Background(), Config{Paths: []string{dir}, Decision: decision}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// input parses a Rego/JSON object literal.
func input(s string) ast.Value {
	return ast.MustParseTerm(s).Value
}

func TestEvalDecodesDecision(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		input string
		want  Result
	}{
		{
			name:  "boolean true allows",
			rules: `decision := true`,
			want:  Result{Allowed: true},
		},
		{
			name:  "boolean false denies",
			rules: `decision := false`,
			want:  Result{Allowed: false},
		},
		{
			name:  "default false rule denies when its body fails",
			rules: "default decision := false\ndecision if input.method == \"GET\"",
			input: `{"method": "POST"}`,
			want:  Result{Allowed: false},
		},
		{
			name:  "rule reads input",
			rules: "default decision := false\ndecision if input.method == \"GET\"",
			input: `{"method": "GET"}`,
			want:  Result{Allowed: true},
		},
		{
			name:  "object with only allowed",
			rules: `decision := {"allowed": true}`,
			want:  Result{Allowed: true},
		},
		{
			name: "object with every field",
			rules: `decision := {
	"allowed": false,
	"headers": {"x-reason": "expired"},
	"response_headers_to_add": {"x-served-by": "claimcheck"},
	"request_headers_to_remove": ["authorization", "cookie"],
	"body": "token expired",
	"http_status": 401,
	"dynamic_metadata": {"sub": "alice", "n": 1.5, "tags": ["a", "b"], "nested": {"ok": true, "none": null}},
}`,
			want: Result{
				Allowed:                false,
				Headers:                []Header{{"x-reason", "expired"}},
				ResponseHeadersToAdd:   []Header{{"x-served-by", "claimcheck"}},
				RequestHeadersToRemove: []string{"authorization", "cookie"},
				Body:                   "token expired",
				HTTPStatus:             401,
				DynamicMetadata: map[string]any{
					"sub":    "alice",
					"n":      json.Number("1.5"),
					"tags":   []any{"a", "b"},
					"nested": map[string]any{"ok": true, "none": nil},
				},
			},
		},
		{
			name:  "header arrays give one header per value and names are sorted",
			rules: `decision := {"allowed": true, "headers": {"x-b": ["2", "1"], "x-a": "0"}}`,
			want: Result{
				Allowed: true,
				Headers: []Header{{"x-a", "0"}, {"x-b", "2"}, {"x-b", "1"}},
			},
		},
		{
			name:  "header value sets are sorted",
			rules: `decision := {"allowed": true, "response_headers_to_add": {"x-set": {"b", "a"}}}`,
			want: Result{
				Allowed:              true,
				ResponseHeadersToAdd: []Header{{"x-set", "a"}, {"x-set", "b"}},
			},
		},
		{
			name:  "array of header objects keeps object order",
			rules: `decision := {"allowed": true, "headers": [{"x-z": "1"}, {"x-a": "2"}]}`,
			want: Result{
				Allowed: true,
				Headers: []Header{{"x-z", "1"}, {"x-a", "2"}},
			},
		},
		{
			name:  "request headers to remove given as a set are sorted",
			rules: `decision := {"allowed": true, "request_headers_to_remove": {"x-b", "x-a"}}`,
			want:  Result{Allowed: true, RequestHeadersToRemove: []string{"x-a", "x-b"}},
		},
		{
			name:  "empty dynamic metadata is an empty map",
			rules: `decision := {"allowed": true, "dynamic_metadata": {}}`,
			want:  Result{Allowed: true, DynamicMetadata: map[string]any{}},
		},
		{
			name:  "unknown keys are ignored",
			rules: `decision := {"allowed": true, "reason": 42}`,
			want:  Result{Allowed: true},
		},
		{
			name:  "decision computed from input",
			rules: `decision := {"allowed": input.user == "alice", "headers": {"x-user": input.user}}`,
			input: `{"user": "alice"}`,
			want:  Result{Allowed: true, Headers: []Header{{"x-user", "alice"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, map[string]string{"policy.rego": authzModule(tt.rules)}, authzDecision)
			var in ast.Value
			if tt.input != "" {
				in = input(tt.input)
			}
			got, err := e.Eval(context.Background(), in)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

// TestHeadersThatOnlyLookOddPass: a tab, bytes beyond ASCII and spaces in
// a value, and every token character in a name, are header text.
func TestHeadersThatOnlyLookOddPass(t *testing.T) {
	e := newEngine(t, map[string]string{"policy.rego": authzModule(`decision := {"allowed": true,
		"headers": {"x-a": "a\tb c", "x-b": "caf\u00e9", "!#$%&'*+-.^_|~09AZaz": ["", " "]},
		"request_headers_to_remove": ["X-Remove_Me"]}`)}, authzDecision)
	got, err := e.Eval(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{{"!#$%&'*+-.^_|~09AZaz", ""}, {"!#$%&'*+-.^_|~09AZaz", " "}, {"x-a", "a\tb c"}, {"x-b", "caf\u00e9"}}
	if !reflect.DeepEqual(got.Headers, want) || !reflect.DeepEqual(got.RequestHeadersToRemove, []string{"X-Remove_Me"}) {
		t.Errorf("headers %q, to remove %q", got.Headers, got.RequestHeadersToRemove)
	}
}

func TestEvalRejectsBadResultShapes(t *testing.T) {
	tests := []struct {
		name    string
		rules   string
		wantMsg string
	}{
		{"number decision", `decision := 1`, "decision must be a boolean or an object, got number"},
		{"string decision", `decision := "yes"`, "decision must be a boolean or an object, got string"},
		{"partial set decision", `decision contains "x"`, "decision must be a boolean or an object, got set"},
		{"missing allowed", `decision := {"body": "no"}`, `decision object has no "allowed" key`},
		{"allowed not boolean", `decision := {"allowed": "true"}`, "allowed must be a boolean, got string"},
		{"headers not object", `decision := {"allowed": true, "headers": "x-a: 1"}`, "headers must be an object, got string"},
		{"header value number", `decision := {"allowed": true, "headers": {"x-a": 1}}`, `headers["x-a"] must be a string or an array of strings, got number`},
		{"header array element number", `decision := {"allowed": true, "headers": {"x-a": ["1", 2]}}`, `headers["x-a"][1] must be a string, got number`},
		{"header name not string", `decision := {"allowed": true, "headers": {1: "a"}}`, "headers keys must be strings, got number"},
		{"header name empty", `decision := {"allowed": true, "headers": {"": "a"}}`, "headers has an empty header name"},
		{"header array element not object", `decision := {"allowed": true, "headers": ["x-a"]}`, "headers[0] must be an object, got string"},
		{"response headers not object", `decision := {"allowed": true, "response_headers_to_add": 1}`, "response_headers_to_add must be an object, got number"},
		{"response header value object", `decision := {"allowed": true, "response_headers_to_add": {"x-a": {}}}`, `response_headers_to_add["x-a"] must be a string or an array of strings, got object`},
		{"headers to remove not array", `decision := {"allowed": true, "request_headers_to_remove": "cookie"}`, "request_headers_to_remove must be an array of strings, got string"},
		{"headers to remove element not string", `decision := {"allowed": true, "request_headers_to_remove": ["cookie", null]}`, "request_headers_to_remove[1] must be a string, got null"},
		{"body not string", `decision := {"allowed": false, "body": {"error": "no"}}`, "body must be a string, got object"},
		{"http_status not number", `decision := {"allowed": false, "http_status": "403"}`, "http_status must be an integer, got string"},
		{"http_status not integer", `decision := {"allowed": false, "http_status": 403.5}`, "http_status must be an integer, got 403.5"},
		{"http_status below 100", `decision := {"allowed": false, "http_status": 99}`, "http_status must be between 100 and 599, got 99"},
		{"http_status above 599", `decision := {"allowed": false, "http_status": 600}`, "http_status must be between 100 and 599, got 600"},
		{"dynamic_metadata not object", `decision := {"allowed": true, "dynamic_metadata": ["a"]}`, "dynamic_metadata must be an object, got array"},
		// Header names and values that would split, cut or smuggle a header.
		{"header value CRLF", `decision := {"allowed": true, "headers": {"x-a": "1\r\nx-injected: 1"}}`, `headers["x-a"]: the value has a control character`},
		{"header value LF", `decision := {"allowed": true, "headers": {"x-a": "1\nx-injected: 1"}}`, `headers["x-a"]: the value has a control character`},
		{"header value CR", `decision := {"allowed": true, "headers": {"x-a": "1\rx"}}`, `headers["x-a"]: the value has a control character`},
		{"header value NUL", `decision := {"allowed": true, "headers": {"x-a": "1\u0000"}}`, `headers["x-a"]: the value has a control character`},
		{"header value DEL", `decision := {"allowed": true, "headers": {"x-a": "\u007f"}}`, `headers["x-a"]: the value has a control character`},
		{"header value vertical tab", `decision := {"allowed": true, "headers": {"x-a": "a\u000bb"}}`, `headers["x-a"]: the value has a control character`},
		{"header array value LF", `decision := {"allowed": true, "headers": {"x-a": ["ok", "b\nc"]}}`, `headers["x-a"]: the value has a control character`},
		{"header object list value LF", `decision := {"allowed": true, "headers": [{"x-a": "ok"}, {"x-b": "\n"}]}`, `headers[1]["x-b"]: the value has a control character`},
		{"deny header value CRLF", `decision := {"allowed": false, "headers": {"x-a": "\r\n"}}`, `headers["x-a"]: the value has a control character`},
		{"response header value CRLF", `decision := {"allowed": true, "response_headers_to_add": {"set-cookie": "a=1\r\nx: y"}}`, `response_headers_to_add["set-cookie"]: the value has a control character`},
		{"header name with CRLF", `decision := {"allowed": true, "headers": {"x-a\r\nx-b": "1"}}`, `headers: "x-a\r\nx-b" is not a header name`},
		{"header name with a colon", `decision := {"allowed": true, "headers": {"x-a: 1\r\nx-b": "1"}}`, `is not a header name`},
		{"header name with a space", `decision := {"allowed": true, "headers": {"x a": "1"}}`, `headers: "x a" is not a header name`},
		{"header name NUL", `decision := {"allowed": true, "headers": {"x\u0000": "1"}}`, `is not a header name`},
		{"header name beyond ASCII", `decision := {"allowed": true, "headers": {"x-\u00e9": "1"}}`, `is not a header name`},
		{"pseudo-header name", `decision := {"allowed": true, "headers": {":authority": "evil.example"}}`, `headers: ":authority" is not a header name`},
		{"deny header name with a space", `decision := {"allowed": false, "headers": {"www authenticate": "x"}}`, `headers: "www authenticate" is not a header name`},
		{"response header name with LF", `decision := {"allowed": true, "response_headers_to_add": {"a\nb": "1"}}`, `response_headers_to_add: "a\nb" is not a header name`},
		{"header to remove with CRLF", `decision := {"allowed": true, "request_headers_to_remove": ["x-a", "cookie\r\nx-b"]}`, `request_headers_to_remove[1]: "cookie\r\nx-b" is not a header name`},
		{"header to remove empty", `decision := {"allowed": true, "request_headers_to_remove": [""]}`, `request_headers_to_remove[0]: "" is not a header name`},
		{"header to remove with a space", `decision := {"allowed": true, "request_headers_to_remove": ["x a"]}`, `request_headers_to_remove[0]: "x a" is not a header name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, map[string]string{"policy.rego": authzModule(tt.rules)}, authzDecision)
			got, err := e.Eval(context.Background(), nil)
			if !errors.Is(err, ErrBadResult) {
				t.Fatalf("Eval error = %v, want ErrBadResult", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Eval error = %q, want it to contain %q", err, tt.wantMsg)
			}
			if !reflect.DeepEqual(got, Result{}) {
				t.Errorf("Eval result = %#v, want zero Result", got)
			}
		})
	}
}

func TestEvalUndefinedDecision(t *testing.T) {
	tests := []struct {
		name  string
		input ast.Value
	}{
		{"rule body fails for input", input(`{"method": "POST"}`)},
		{"no input", nil},
	}
	e := newEngine(t, map[string]string{
		"policy.rego": authzModule(`decision if input.method == "GET"`),
	}, authzDecision)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Eval(context.Background(), tt.input)
			if !errors.Is(err, ErrUndefined) {
				t.Fatalf("Eval error = %v, want ErrUndefined", err)
			}
			if errors.Is(err, ErrBadResult) {
				t.Errorf("Eval error = %v, must not be ErrBadResult", err)
			}
		})
	}
}

func TestEvalReturnsEvaluationErrors(t *testing.T) {
	tests := []struct {
		name     string
		rules    string
		wantCode string
	}{
		{
			name:     "function with conflicting outputs",
			rules:    "f(_) := 1\nf(_) := 2\ndecision := f(input.x) == 1",
			wantCode: topdown.ConflictErr,
		},
		{
			name:     "complete rule with conflicting values",
			rules:    "decision := true if input.x == 1\ndecision := false if input.x == 1",
			wantCode: topdown.ConflictErr,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, map[string]string{"policy.rego": authzModule(tt.rules)}, authzDecision)
			_, err := e.Eval(context.Background(), input(`{"x": 1}`))
			var terr *topdown.Error
			if !errors.As(err, &terr) {
				t.Fatalf("Eval error = %v, want a *topdown.Error", err)
			}
			if terr.Code != tt.wantCode {
				t.Errorf("error code = %q, want %q", terr.Code, tt.wantCode)
			}
			if errors.Is(err, ErrUndefined) || errors.Is(err, ErrBadResult) {
				t.Errorf("Eval error = %v, must be neither ErrUndefined nor ErrBadResult", err)
			}
			if !strings.Contains(err.Error(), "policy.rego:") {
				t.Errorf("Eval error = %q, want the policy location", err)
			}
		})
	}
}

func TestNewPlacesDataLikeOPA(t *testing.T) {
	rules := authzModule("default decision := false\ndecision if input.user in data.x.y.users")
	tests := []struct {
		name  string
		files map[string]string
		// paths are relative to the directory holding files; empty means
		// the directory itself.
		paths []string
	}{
		{
			name: "data.json in a subdirectory goes under the directory path",
			files: map[string]string{
				"policy.rego":    rules,
				"x/y/data.json":  `{"users": ["alice"]}`,
				"x/y/ignored.md": "not data",
			},
		},
		{
			name: "data.yaml in a subdirectory goes under the directory path",
			files: map[string]string{
				"policy.rego":   rules,
				"x/y/data.yaml": "users:\n  - alice\n",
			},
		},
		{
			name: "data.yml in a subdirectory goes under the directory path",
			files: map[string]string{
				"policy.rego":  rules,
				"x/y/data.yml": "users: [alice]\n",
			},
		},
		{
			name: "data.json at the top of a directory goes under data",
			files: map[string]string{
				"policy.rego": rules,
				"data.json":   `{"x": {"y": {"users": ["alice"]}}}`,
			},
		},
		{
			name: "data file named directly goes under data",
			files: map[string]string{
				"rego/policy.rego": rules,
				"other/users.json": `{"x": {"y": {"users": ["alice"]}}}`,
			},
			paths: []string{"rego", "other/users.json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			paths := pathsIn(dir, tt.paths)
			e, err := New(context.Background(), Config{Paths: paths, Decision: authzDecision})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			for user, want := range map[string]bool{"alice": true, "mallory": false} {
				got, err := e.Eval(context.Background(), input(fmt.Sprintf(`{"user": %q}`, user)))
				if err != nil {
					t.Fatalf("Eval(%s): %v", user, err)
				}
				if got.Allowed != want {
					t.Errorf("Eval(%s).Allowed = %v, want %v", user, got.Allowed, want)
				}
			}
		})
	}
}

func TestNewSkipsTestAndHiddenFiles(t *testing.T) {
	const broken = "package broken\n\nthis is not rego {\n"
	tests := []struct {
		name string
		file string
	}{
		{"unit test module", "policy_test.rego"},
		{"unit test module in a subdirectory", "lib/lib_test.rego"},
		{"hidden module", ".#policy.rego"},
		{"module in a hidden directory", ".git/policy.rego"},
		{"data in a hidden directory", "..data/data.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newEngine(t, map[string]string{
				"policy.rego": authzModule(`decision := true`),
				tt.file:       broken,
			}, authzDecision)
		})
	}
}

func TestNewRejectsBadConfigAndPolicies(t *testing.T) {
	valid := authzModule(`decision := true`)
	tests := []struct {
		name     string
		files    map[string]string
		paths    []string // relative to the directory holding files
		decision string
		wantIs   error
		wantMsgs []string
	}{
		{
			name:     "missing path",
			files:    map[string]string{"policy.rego": valid},
			paths:    []string{".", "does-not-exist"},
			decision: authzDecision,
			wantIs:   fs.ErrNotExist,
			wantMsgs: []string{"does-not-exist"},
		},
		{
			name:     "no paths",
			paths:    []string{},
			decision: authzDecision,
			wantMsgs: []string{"no paths configured"},
		},
		{
			name:     "no rego module",
			files:    map[string]string{"data.json": `{"a": 1}`},
			decision: authzDecision,
			wantMsgs: []string{"no .rego files in paths"},
		},
		{
			name:     "only unit test modules",
			files:    map[string]string{"policy_test.rego": valid},
			decision: authzDecision,
			wantMsgs: []string{"no .rego files in paths"},
		},
		{
			name:     "parse error names file and line",
			files:    map[string]string{"bad.rego": "package claimcheck.authz\n\ndecision := ]\n\nother := 1\n"},
			decision: authzDecision,
			wantMsgs: []string{"bad.rego:3:", "rego_parse_error"},
		},
		{
			name:     "rego v0 syntax is a parse error",
			files:    map[string]string{"old.rego": "package claimcheck.authz\n\ndecision { true }\n"},
			decision: authzDecision,
			wantMsgs: []string{"old.rego:3:", "rego_parse_error"},
		},
		{
			name:     "compile error names file and line",
			files:    map[string]string{"unsafe.rego": "package claimcheck.authz\n\ndecision if {\n\tx == 1\n}\n"},
			decision: authzDecision,
			wantMsgs: []string{"unsafe.rego:4:", "rego_unsafe_var_error"},
		},
		{
			name:     "invalid data file",
			files:    map[string]string{"policy.rego": valid, "x/data.json": "{"},
			decision: authzDecision,
			wantMsgs: []string{"data.json"},
		},
		{
			name:     "decision rule not defined",
			files:    map[string]string{"policy.rego": valid},
			decision: "claimcheck/authz/nope",
			wantIs:   ErrUnknownRule,
			wantMsgs: []string{"decision rule data.claimcheck.authz.nope not defined in the loaded policy"},
		},
		{
			name:     "decision naming a package is not a rule",
			files:    map[string]string{"policy.rego": valid},
			decision: "claimcheck/authz",
			wantMsgs: []string{"decision rule data.claimcheck.authz not defined"},
		},
		{
			name:     "decision naming data is not a rule",
			files:    map[string]string{"policy.rego": valid, "claimcheck/flag/data.json": `{"on": true}`},
			decision: "claimcheck/flag/on",
			wantMsgs: []string{"decision rule data.claimcheck.flag.on not defined"},
		},
		{
			name:     "empty decision",
			files:    map[string]string{"policy.rego": valid},
			decision: "",
			wantMsgs: []string{`decision ""`, "empty rule path"},
		},
		{
			name:     "decision with dots",
			files:    map[string]string{"policy.rego": valid},
			decision: "data.claimcheck.authz.decision",
			wantMsgs: []string{`segment "data.claimcheck.authz.decision" is not a Rego identifier`},
		},
		{
			name:     "decision with trailing slash",
			files:    map[string]string{"policy.rego": valid},
			decision: "claimcheck/authz/",
			wantMsgs: []string{`segment "" is not a Rego identifier`},
		},
		{
			name: "http.send is rejected",
			files: map[string]string{"policy.rego": authzModule(
				"decision if {\n\thttp.send({\"method\": \"GET\", \"url\": \"http://example.com\"}).status_code == 200\n}")},
			decision: authzDecision,
			wantMsgs: []string{"policy.rego:4:", "http.send is disabled"},
		},
		{
			name: "net.lookup_ip_addr is rejected inside a function",
			files: map[string]string{"policy.rego": authzModule(
				"resolves(name) := count(net.lookup_ip_addr(name)) > 0\n\ndecision := resolves(\"example.com\")")},
			decision: authzDecision,
			wantMsgs: []string{"policy.rego:3:", "net.lookup_ip_addr is disabled"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			paths := pathsIn(dir, tt.paths)
			e, err := New(context.Background(), Config{Paths: paths, Decision: tt.decision})
			if err == nil {
				t.Fatalf("New succeeded with revision %s, want an error", e.Revision())
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("New error = %v, want errors.Is %v", err, tt.wantIs)
			}
			for _, msg := range tt.wantMsgs {
				if !strings.Contains(err.Error(), msg) {
					t.Errorf("New error = %q, want it to contain %q", err, msg)
				}
			}
		})
	}
}

func TestNewAcceptsDecisionPathForms(t *testing.T) {
	dir := writeFiles(t, map[string]string{"policy.rego": authzModule(`decision := true`)})
	for _, decision := range []string{
		"claimcheck/authz/decision",
		"/claimcheck/authz/decision",
		"data/claimcheck/authz/decision",
		"/data/claimcheck/authz/decision",
	} {
		t.Run(decision, func(t *testing.T) {
			e, err := New(context.Background(), Config{Paths: []string{dir}, Decision: decision})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got, err := e.Eval(context.Background(), nil)
			if err != nil || !got.Allowed {
				t.Errorf("Eval = %+v, %v; want allowed", got, err)
			}
		})
	}
}

func TestNewAcceptsRuleDefinedByRefHead(t *testing.T) {
	e := newEngine(t, map[string]string{
		"policy.rego": "package claimcheck\n\nauthz.decision := {\"allowed\": true, \"http_status\": 200}\n",
	}, authzDecision)
	got, err := e.Eval(context.Background(), nil)
	if err != nil {
		t.Fatalf("Eval: %v", err)
	}
	if want := (Result{Allowed: true, HTTPStatus: 200}); !reflect.DeepEqual(got, want) {
		t.Errorf("Eval = %+v, want %+v", got, want)
	}
}

func TestEvalStopsWhenContextIsDone(t *testing.T) {
	// slow never succeeds, so without cancellation the decision is true
	// after millions of iterations.
	rules := `slow if {
	some i in numbers.range(1, 2000)
	some j in numbers.range(1, 2000)
	i * j < 0
}

default decision := true

decision := false if slow`
	e := newEngine(t, map[string]string{"policy.rego": authzModule(rules)}, authzDecision)

	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
	}{
		{
			name: "context cancelled before evaluation",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
		{
			name: "deadline passes during evaluation",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 20*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			got, err := e.Eval(ctx, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Eval = %+v, %v; want error %v", got, err, tt.wantErr)
			}
			var terr *topdown.Error
			if !errors.As(err, &terr) || terr.Code != topdown.CancelErr {
				t.Errorf("Eval error = %v, want it to carry the %s", err, topdown.CancelErr)
			}
		})
	}
}

// deadlineRecorder is a slog.Handler that records whether the context of
// each record (for print() output, the evaluation's) has a deadline.
type deadlineRecorder struct {
	mu        sync.Mutex
	deadlines []time.Time // zero for none
}

func (*deadlineRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *deadlineRecorder) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h *deadlineRecorder) WithGroup(string) slog.Handler          { return h }
func (h *deadlineRecorder) Handle(ctx context.Context, _ slog.Record) error {
	d, _ := ctx.Deadline()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deadlines = append(h.deadlines, d)
	return nil
}

func TestEvalTimeoutBoundsEvaluation(t *testing.T) {
	files := map[string]string{"policy.rego": authzModule("decision if print(\"evaluating\")\nother if print(\"evaluating\")")}
	tests := []struct {
		name string
		opts []Option
		want time.Duration // 0: no deadline
	}{
		{name: "default timeout", want: DefaultEvalTimeout},
		{name: "configured timeout", opts: []Option{WithEvalTimeout(3 * time.Second)}, want: 3 * time.Second},
		{name: "zero means no timeout", opts: []Option{WithEvalTimeout(0)}},
		{name: "negative means no timeout", opts: []Option{WithEvalTimeout(-time.Second)}},
	}
	evals := map[string]func(*Engine) (Result, error){
		"Eval": func(e *Engine) (Result, error) { return e.Eval(context.Background(), nil) },
		"EvalRule": func(e *Engine) (Result, error) {
			return e.EvalRule(context.Background(), "claimcheck/authz/other", nil)
		},
		"EvalInterface": func(e *Engine) (Result, error) {
			return e.EvalInterface(context.Background(), map[string]any{})
		},
	}
	for _, tt := range tests {
		for method, eval := range evals {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				rec := &deadlineRecorder{}
				e := newEngine(t, files, authzDecision, append(tt.opts, WithLogger(slog.New(rec)))...)
				before := time.Now()
				got, err := eval(e)
				after := time.Now()
				if err != nil || !got.Allowed {
					t.Fatalf("%s = %+v, %v; want allowed", method, got, err)
				}
				if len(rec.deadlines) != 1 {
					t.Fatalf("print() was seen %d times, want once", len(rec.deadlines))
				}
				d := rec.deadlines[0]
				switch {
				case tt.want == 0 && !d.IsZero():
					t.Errorf("evaluation deadline %v, want none", d)
				case tt.want != 0 && d.IsZero():
					t.Errorf("evaluation had no deadline, want %v", tt.want)
				case tt.want != 0 && (d.Before(before.Add(tt.want)) || d.After(after.Add(tt.want))):
					t.Errorf("evaluation deadline is %v after the call started, want %v", d.Sub(before), tt.want)
				}
			})
		}
	}
}

func TestEvalTimeoutStopsSlowPolicy(t *testing.T) {
	// slow never succeeds; evaluating it takes far longer than the
	// timeouts below.
	rules := `slow if {
	some i in numbers.range(1, 3000)
	some j in numbers.range(1, 3000)
	i * j < 0
}

default decision := true

decision := false if slow

default also_slow := true

also_slow := false if slow`
	tests := []struct {
		name    string
		opts    []Option
		wantMsg string
	}{
		{name: "default timeout", wantMsg: "timed out after 100ms"},
		{name: "configured timeout", opts: []Option{WithEvalTimeout(10 * time.Millisecond)}, wantMsg: "timed out after 10ms"},
	}
	for _, tt := range tests {
		e := newEngine(t, map[string]string{"policy.rego": authzModule(rules)}, authzDecision, tt.opts...)
		for _, rule := range []string{authzDecision, "claimcheck/authz/also_slow"} {
			t.Run(tt.name+"/"+rule, func(t *testing.T) {
				got, err := e.EvalRule(context.Background(), rule, nil)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("EvalRule = %+v, %v; want an error wrapping context.DeadlineExceeded", got, err)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("EvalRule error = %q, want it to contain %q", err, tt.wantMsg)
				}
				if got.Allowed {
					t.Errorf("EvalRule result = %+v, want it not allowed", got)
				}
			})
		}
	}
}

func TestRevision(t *testing.T) {
	base := map[string]string{
		"policy.rego":         authzModule(`decision := input.user in data.users`),
		"data.json":           `{"users": ["alice"]}`,
		"policy_test.rego":    "package claimcheck.authz_test\n",
		".hidden/ignored.txt": "x",
	}
	tests := []struct {
		name        string
		change      func(t *testing.T, dir string)
		wantChanged bool
	}{
		{
			name:   "reloading unchanged files keeps the revision",
			change: func(*testing.T, string) {},
		},
		{
			name: "editing a unit test module keeps the revision",
			change: func(t *testing.T, dir string) {
				appendFile(t, filepath.Join(dir, "policy_test.rego"), "test_x if true\n")
			},
		},
		{
			name: "editing a module changes the revision",
			change: func(t *testing.T, dir string) {
				appendFile(t, filepath.Join(dir, "policy.rego"), "# comment\n")
			},
			wantChanged: true,
		},
		{
			name: "editing data changes the revision",
			change: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "data.json"), `{"users": ["alice", "bob"]}`)
			},
			wantChanged: true,
		},
		{
			name: "adding a module changes the revision",
			change: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "extra.rego"), "package extra\n\nx := 1\n")
			},
			wantChanged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, base)
			cfg := Config{Paths: []string{dir}, Decision: authzDecision}
			before, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			rev := before.Revision()
			if len(rev) != 12 {
				t.Errorf("Revision() = %q, want 12 hex digits", rev)
			}
			if _, err := hex.DecodeString(rev); err != nil {
				t.Errorf("Revision() = %q is not hex: %v", rev, err)
			}

			tt.change(t, dir)
			after, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatalf("New after change: %v", err)
			}
			if changed := after.Revision() != rev; changed != tt.wantChanged {
				t.Errorf("revision %s -> %s: changed = %v, want %v", rev, after.Revision(), changed, tt.wantChanged)
			}
		})
	}
}

func TestRevisionDoesNotDependOnLocation(t *testing.T) {
	files := map[string]string{
		"policy.rego": authzModule(`decision := true`),
		"a/data.json": `{"k": "v"}`,
	}
	first := newEngine(t, files, authzDecision).Revision()
	second := newEngine(t, files, authzDecision).Revision()
	if first != second {
		t.Errorf("same files in two directories: revisions %s and %s, want equal", first, second)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPrintOutput(t *testing.T) {
	rules := "decision if {\n\tprint(\"checking\", input.user)\n\tinput.user == \"alice\"\n}"
	tests := []struct {
		name       string
		withLogger bool
		wantLogged []string
	}{
		{
			name:       "print goes to the logger with its location",
			withLogger: true,
			wantLogged: []string{"level=INFO", `output="checking alice"`, "policy.rego:4"},
		},
		{
			name: "print without a logger is dropped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var opts []Option
			if tt.withLogger {
				opts = append(opts, WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			}
			e := newEngine(t, map[string]string{"policy.rego": authzModule(rules)}, authzDecision, opts...)
			got, err := e.Eval(context.Background(), input(`{"user": "alice"}`))
			if err != nil || !got.Allowed {
				t.Fatalf("Eval = %+v, %v; want allowed", got, err)
			}
			for _, want := range tt.wantLogged {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("log = %q, want it to contain %q", buf.String(), want)
				}
			}
			if len(tt.wantLogged) == 0 && buf.Len() != 0 {
				t.Errorf("log = %q, want nothing", buf.String())
			}
		})
	}
}

func TestEvalInterface(t *testing.T) {
	e := newEngine(t, map[string]string{
		"policy.rego": authzModule(`decision := {"allowed": input.n > 1, "headers": {"x-n": format_int(input.n, 10)}}`),
	}, authzDecision)
	tests := []struct {
		name    string
		input   any
		want    Result
		wantErr bool
	}{
		{
			name:  "Go values are converted",
			input: map[string]any{"n": 2},
			want:  Result{Allowed: true, Headers: []Header{{"x-n", "2"}}},
		},
		{
			name: "structs are converted through their JSON form",
			input: struct {
				N int `json:"n"`
			}{N: 1},
			want: Result{Allowed: false, Headers: []Header{{"x-n", "1"}}},
		},
		{
			name:    "values without a JSON form are an error",
			input:   map[string]any{"n": make(chan int)},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.EvalInterface(context.Background(), tt.input)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("EvalInterface = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("EvalInterface: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("EvalInterface = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEvalIsSafeForConcurrentUse(t *testing.T) {
	e := newEngine(t, map[string]string{
		"policy.rego": authzModule(`default decision := false
decision := {"allowed": true, "headers": {"x-user": input.user}} if input.user in data.users`),
		"data.json": `{"users": ["u0", "u2", "u4", "u6"]}`,
	}, authzDecision, WithEvalTimeout(time.Minute)) // about sharing, not speed: a loaded CI machine must not fail it

	const goroutines, iterations = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*iterations)
	for g := range goroutines {
		wg.Go(func() {
			for i := range iterations {
				user := fmt.Sprintf("u%d", (g+i)%8)
				got, err := e.Eval(context.Background(), input(fmt.Sprintf(`{"user": %q}`, user)))
				if err != nil {
					errs <- err
					continue
				}
				wantAllowed := (g+i)%2 == 0
				if got.Allowed != wantAllowed {
					errs <- fmt.Errorf("user %s: Allowed = %v, want %v", user, got.Allowed, wantAllowed)
				}
				if wantAllowed && !reflect.DeepEqual(got.Headers, []Header{{"x-user", user}}) {
					errs <- fmt.Errorf("user %s: Headers = %v", user, got.Headers)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkEval(b *testing.B) {
	e := newEngine(b, map[string]string{
		"policy.rego": authzModule(`default decision := false
decision if {
	input.method == "GET"
	startswith(input.path, "/api/")
	"reader" in input.roles
}`),
	}, authzDecision)
	in := input(`{"method": "GET", "path": "/api/items", "roles": ["reader"]}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := e.Eval(ctx, in)
		if err != nil || !res.Allowed {
			b.Fatalf("Eval = %+v, %v", res, err)
		}
	}
}

func TestWithNetworkAllowsNetworkBuiltins(t *testing.T) {
	dir := t.TempDir()
	rego := "package net\n\nallow if {\n\tresp := http.send({\"method\": \"GET\", \"url\": input.url, \"timeout\": \"1s\"})\n\tresp.status_code == 200\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "net.rego"), []byte(rego), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Paths: []string{dir}, Decision: "net/allow"}
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "http.send is disabled") {
		t.Fatalf("without WithNetwork: err = %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	e, err := New(context.Background(), cfg, WithNetwork(), WithEvalTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.EvalInterface(context.Background(), map[string]any{"url": srv.URL})
	if err != nil || !res.Allowed {
		t.Fatalf("http.send with WithNetwork: %+v, %v", res, err)
	}
}

// pathsIn returns dir, or the paths rel inside it when rel is not nil.
func pathsIn(dir string, rel []string) []string {
	if rel == nil {
		return []string{dir}
	}
	paths := make([]string, len(rel))
	for i, p := range rel {
		paths[i] = filepath.Join(dir, p)
	}
	return paths
}

func TestPrintOutputHidesCredentials(t *testing.T) {
	const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzdmMifQ.c2lnbmF0dXJl"
	tests := []struct {
		name  string
		print string
		input string
		want  string
	}{
		{"a token alone", "input.token", `{"token": "` + jwt + `"}`, `output=[token]`},
		{"a bearer header alone", "input.authorization", `{"authorization": "Bearer opaque-s3cr3t-value"}`, `output="Bearer [hidden]"`},
		{"headers printed as an object", "input.headers", `{"headers": {"Authorization": "Basic dXNlcjpzM2NyM3Q=", "cookie": "session=s3cr3t; at=x", "accept": "*/*"}}`,
			`output="{\"Authorization\": \"[hidden]\", \"accept\": \"*/*\", \"cookie\": \"[hidden]\"}"`},
		{"a query token", "input.path", `{"path": "/orders?access_token=` + jwt + `"}`, `output="/orders?access_token=[token]"`},
		{"other values as they are", "input.user", `{"user": "alice"}`, `output=alice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			rules := "decision if {\n\tprint(" + tt.print + ")\n}"
			e := newEngine(t, map[string]string{"policy.rego": authzModule(rules)}, authzDecision,
				WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
			if _, err := e.Eval(context.Background(), input(tt.input)); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), tt.want) || strings.Contains(buf.String(), "s3cr3t") || strings.Contains(buf.String(), "c2lnbmF0dXJl") {
				t.Errorf("log = %q, want %s and no credential", buf.String(), tt.want)
			}
		})
	}
}
