package keys

import (
	"context"
	"fmt"
	"os"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// File is a KeySource holding the keys of a JWKS file, read once by NewFile.
type File struct {
	set jwk.Set
}

// NewFile reads the JWKS at path. Private keys in the file are reduced to
// their public halves; a file without any usable signature verification
// key is an error.
func NewFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jwks file: %w", err)
	}
	defer f.Close()
	b, err := readCapped(f)
	if err != nil {
		return nil, fmt.Errorf("jwks file %s: %w", path, err)
	}
	set, err := parseSet(b)
	if err != nil {
		return nil, fmt.Errorf("jwks file %s: %w", path, err)
	}
	return &File{set: set}, nil
}

// Keys returns the file's keys.
func (f *File) Keys(context.Context) (jwk.Set, error) { return f.set, nil }

// Refresh returns the file's keys; the file is not read again.
func (f *File) Refresh(context.Context) (jwk.Set, error) { return f.set, nil }
