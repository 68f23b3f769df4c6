package token

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckStrict(t *testing.T) {
	tests := []struct {
		json string
		want string // "" accepted; else a substring of the error
	}{
		{`{}`, ""},
		{`{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}`, ""},
		{`{"a":"\"a\":1,\"a\":2","b":"}{[],"}`, ""},
		{`{"a\\":1,"a":2}`, ""},
		{`{"s":"\ud83d\ude00","t":"\u00e9\u0000"}`, ""},
		{` { "a" : 1 , "b" : [ 1 , { "a" : 2 } ] } `, ""},
		{`{"a":1,"a":2}`, `repeats the member name "a"`},
		{`{"a":1,"\u0061":2}`, `repeats the member name "a"`},
		{`{"x":{"y":[{"a":1,"b":2,"a":3}]}}`, `repeats the member name "a"`},
		{`{"":1,"":2}`, `repeats the member name ""`},
		{`{"x":"\ud800"}`, "lone UTF-16 surrogate"},
		{`{"x":"\uDFFF"}`, "lone UTF-16 surrogate"},
		{`{"x":"\ud800\u0041"}`, "lone UTF-16 surrogate"},
		{`{"x":"\ud800x"}`, "lone UTF-16 surrogate"},
		{`{"x":"\\ud800"}`, ""},
		{"{\"x\":\"\xff\"}", "not valid UTF-8"},
	}
	many := make([]string, 0, 40)
	for i := range 40 {
		many = append(many, `"m`+string(rune('a'+i%26))+string(rune('a'+i/26))+`":1`)
	}
	tests = append(tests,
		struct{ json, want string }{"{" + strings.Join(many, ",") + "}", ""},
		struct{ json, want string }{"{" + strings.Join(many, ",") + `,"mba":2}`, `repeats the member name "mba"`},
		struct{ json, want string }{"{" + strings.Join(many, ",") + `,"x":{"maa":1},"mzz":1}`, ""},
	)
	for _, tt := range tests {
		err := checkStrict([]byte(tt.json))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.json, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want %q", tt.json, err, tt.want)
		}
	}
}

// FuzzDuplicateName compares duplicateName, a hand-written scanner, with
// encoding/json's tokenizer on every valid UTF-8 JSON text the fuzzer
// finds (checkStrict refuses invalid UTF-8 before scanning).
func FuzzDuplicateName(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"a":{"a":1},"b":[{"a":1},{"a":1}]}`, `{"a\"":1,"a\u0022":2}`,
		`[{"x":1,"y":{"x":1}},"a","a"]`, `{"s":"{\"a\":1,\"a\":1}"}`, `"str"`, `{"a":[],"b":{},"a":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || !utf8.Valid(b) {
			return
		}
		got, gotDup := duplicateName(b)
		want, wantDup := referenceDuplicate(t, b)
		if gotDup != wantDup || (gotDup && got != want) {
			t.Fatalf("%q: duplicateName = %q, %v; encoding/json finds %q, %v", b, got, gotDup, want, wantDup)
		}
	})
}

// referenceDuplicate finds the first repeated member name by walking
// encoding/json's tokens.
func referenceDuplicate(t *testing.T, b []byte) (string, bool) {
	type level struct {
		names   map[string]bool // nil for an array
		wantKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []level
	ended := func() { // a value ended in the innermost container
		if n := len(stack); n > 0 && stack[n-1].names != nil {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return "", false
		}
		if err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey && tok != json.Delim('}') {
			name := tok.(string)
			if stack[n-1].names[name] {
				return name, true
			}
			stack[n-1].names[name] = true
			stack[n-1].wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{names: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, level{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			ended()
		default:
			ended()
		}
	}
}
