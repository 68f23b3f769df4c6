package token

import (
	"context"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// NoKeys is the KeySource of an issuer that publishes no keys, such as an
// identity provider of opaque tokens only: claimcheck takes its tokens by
// introspection. Verify rejects every JWT naming such an issuer with
// ErrKeyUnknown, before reading its header.
var NoKeys KeySource = noKeys{}

type noKeys struct{}

func (noKeys) Keys(context.Context) (jwk.Set, error)    { return jwk.NewSet(), nil }
func (noKeys) Refresh(context.Context) (jwk.Set, error) { return jwk.NewSet(), nil }
