package pool

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/agentauth/agentauth"
)

// CodexHomes builds one member per Codex home, each a transport over base
// (nil means http.DefaultTransport) built as agentauth.NewTransport builds
// it, with opts for every home but CodexHome (named by its home
// directory). The credential fields of opts.Config (Credentials,
// TokenSource, IdentityStore) must be unset: each home has its own login.
// [Pool.Close] releases what was built; on error nothing is left running.
func CodexHomes(ctx context.Context, base http.RoundTripper, opts agentauth.Options, homes ...string) ([]Member, error) {
	if len(homes) == 0 {
		return nil, errors.New("pool: CodexHomes: no home")
	}
	if opts.Config.Credentials != nil || opts.Config.TokenSource != nil || opts.Config.IdentityStore != nil {
		return nil, errors.New("pool: CodexHomes: Options.Config carries a credential; each home brings its own")
	}
	if opts.HTTPClient == nil {
		rt := base
		if rt == nil {
			rt = http.DefaultTransport
		}
		opts.HTTPClient = &http.Client{Transport: rt}
	}
	var members []Member
	fail := func(err error) ([]Member, error) {
		for _, m := range members {
			m.close()
		}
		return nil, err
	}
	for _, home := range homes {
		o := opts
		o.CodexHome = home
		setup, err := agentauth.Load(ctx, o)
		if err != nil {
			return fail(fmt.Errorf("pool: CodexHomes: %s: %w", home, err))
		}
		rt, err := setup.Transport(base)
		if err != nil {
			setup.Close()
			return fail(fmt.Errorf("pool: CodexHomes: %s: %w", home, err))
		}
		members = append(members, Member{Name: home, Transport: rt, close: setup.Close})
	}
	return members, nil
}
