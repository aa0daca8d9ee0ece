// Package testhooks is the fence around the transport's injectable clock,
// randomness and environment: tests, benchmarks and the module's own
// command set them, while transport.Options (what users fill in) does not
// show them. Code outside this module cannot import it.
package testhooks

import (
	"io"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
)

// Hooks replace what a transport reads from the world. A nil field means
// the real thing.
type Hooks struct {
	// Now is the clock for assertion timestamps, cooldowns and backoff
	// deadlines (time.Now).
	Now func() time.Time
	// Rand returns a float64 in [0, 1) for backoff jitter
	// (math/rand/v2.Float64).
	Rand func() float64
	// KeyRand is the entropy for generated agent keys (crypto/rand).
	KeyRand io.Reader
	// Getenv reads the environment for base-URL overrides (os.Getenv).
	Getenv func(string) string
	// ThreadCacheOverride, when non-nil, replaces the whole task-cache tuning
	// (backoff shape, removal callback) that transport.Tuning does not
	// show; its zero fields still take the defaults.
	ThreadCacheOverride *taskcache.CacheOptions
	// AgentSoftware replaces what provisioning says about this software.
	AgentSoftware identity.Software
}

// of is installed by package transport: it returns the hooks of a
// *transport.Options.
var of func(cfg any) *Hooks

// Install is called once, by package transport's init, with the function
// that finds the hooks of a *transport.Options.
func Install(f func(cfg any) *Hooks) { of = f }

// Of returns the hooks of opts, which must be a *transport.Options, to read
// or set: testhooks.Of(&opts).Now = clock.Now.
func Of(opts any) *Hooks { return of(opts) }
