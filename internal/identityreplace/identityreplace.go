// Package identityreplace tells an identity store, through the context of
// a save, which stored runtime the saved identity replaces. A store whose
// first stored identity wins refuses any other runtime for the login, but
// must let through the one replacement of a runtime the AuthAPI said it no
// longer knows: otherwise a dead identity would stay stored forever.
package identityreplace

import "context"

type key struct{}

// With returns ctx saying that the identity being saved replaces the stored
// runtime runtimeID. An empty runtimeID returns ctx unchanged.
func With(ctx context.Context, runtimeID string) context.Context {
	if runtimeID == "" {
		return ctx
	}
	return context.WithValue(ctx, key{}, runtimeID)
}

// From returns the runtime the save replaces, or "".
func From(ctx context.Context) string {
	s, _ := ctx.Value(key{}).(string)
	return s
}
