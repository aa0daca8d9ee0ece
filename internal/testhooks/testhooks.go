// Package testhooks is the fence around the transport's injectable clock,
// randomness and environment: tests, benchmarks and the module's own
// command set them, while transport.Config (what users fill in) does not
// show them. Code outside this module cannot import it.
package testhooks

import (
	"io"
	"time"
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
}

// of is installed by package transport: it returns the hooks of a
// *transport.Config.
var of func(cfg any) *Hooks

// Install is called once, by package transport's init, with the function
// that finds the hooks of a *transport.Config.
func Install(f func(cfg any) *Hooks) { of = f }

// Of returns the hooks of cfg, which must be a *transport.Config, to read or
// set: testhooks.Of(&cfg).Now = clock.Now.
func Of(cfg any) *Hooks { return of(cfg) }
