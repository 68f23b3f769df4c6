package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestUsesInput(t *testing.T) {
	tests := []struct {
		name       string
		rego       string
		attributes bool // UsesInput("attributes")
		token      bool
		headers    bool // UsesInput("request", "headers")
	}{
		{"token only", "package u\n\nallow if input.token.claims.sub == \"x\"\n", false, true, false},
		{"attributes by name", "package u\n\nallow if input.attributes.request.http.method == \"GET\"\n", true, false, false},
		{"attributes via a bracket string", "package u\n\nallow if input[\"attributes\"].request.http.method == \"GET\"\n", true, false, false},
		{"request method only", "package u\n\nallow if input.request.method == \"GET\"\n", false, false, false},
		{"request headers by name", "package u\n\nallow if input.request.headers[\"x-a\"] == \"1\"\n", false, false, true},
		{"request read whole", "package u\n\nallow if {\n\tr := input.request\n\tr.headers\n}\n", false, false, true},
		{"request with a computed key", "package u\n\nk := \"headers\"\n\nallow if input.request[k]\n", false, false, true},
		{"a computed key reads everything", "package u\n\nk := \"token\"\n\nallow if input[k]\n", true, true, true},
		{"input passed whole to a function", "package u\n\nf(x) if x.token\n\nallow if f(input)\n", true, true, true},
		{"input bound to a variable", "package u\n\nallow if {\n\tx := input\n\tx.token\n}\n", true, true, true},
		{"walk over input", "package u\n\nallow if {\n\twalk(input, [p, v])\n\tv == \"x\"\n}\n", true, true, true},
		{"every key in a comprehension", "package u\n\nallow if count({k | input[k]}) > 1\n", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "u.rego"), []byte(tt.rego), 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := New(context.Background(), Config{Paths: []string{dir}, Decision: "u/allow"})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.UsesInput("attributes"); got != tt.attributes {
				t.Errorf("UsesInput(attributes) = %v, want %v", got, tt.attributes)
			}
			if got := e.UsesInput("token"); got != tt.token {
				t.Errorf("UsesInput(token) = %v, want %v", got, tt.token)
			}
			if got := e.UsesInput("request", "headers"); got != tt.headers {
				t.Errorf("UsesInput(request, headers) = %v, want %v", got, tt.headers)
			}
		})
	}
}
