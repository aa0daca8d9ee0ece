package pool

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/agentauth/agentauth/transport"
)

// CodexHomes builds one member per Codex home, each a transport over base
// (nil means http.DefaultTransport) built by transport.New with opts and
// that home as CodexHome (the member is named by it). opts.Credential must
// be unset: each home brings its own login. [Pool.Close] releases what was
// built; on error nothing is left running.
func CodexHomes(ctx context.Context, base http.RoundTripper, opts transport.Options, homes ...string) ([]Member, error) {
	if len(homes) == 0 {
		return nil, errors.New("pool: CodexHomes: no home")
	}
	if opts.Credential != (transport.Credential{}) {
		return nil, errors.New("pool: CodexHomes: Options.Credential is set; each home brings its own")
	}
	var members []Member
	fail := func(err error) ([]Member, error) {
		for _, m := range members {
			m.close()
		}
		return nil, err
	}
	for _, home := range homes {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		o := opts
		o.CodexHome = home
		rt, err := transport.New(base, o)
		if err != nil {
			return fail(fmt.Errorf("pool: CodexHomes: %s: %w", home, err))
		}
		members = append(members, Member{Name: home, Transport: rt, close: rt.Close})
	}
	return members, nil
}
