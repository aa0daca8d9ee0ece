// demo's transport under test, its login token and its network.

package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/internal/transporthook"
	"github.com/agentauth/agentauth/transport"
)

// demoToken returns a random login token for this run. It is a secret in
// the sense that it is never printed.
func demoToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errors.New("reading randomness failed")
	}
	return "demo-" + hex.EncodeToString(b[:]), nil
}

// newDemoTransport builds the transport under test: a ChatGPT-style login
// with use_agent_identity on, against base, with a fresh identity store.
func newDemoTransport(netTransport *http.Transport, base, token string, opts demoOptions, errs *demoErrors, regs *registrationTimes) (*transport.Transport, error) {
	o := transport.Options{
		// Warnings (a Bearer fallback and its cause, a store that cannot
		// persist) are the transport's explanation of a failing run.
		Logger: slog.New(demoWarnHandler(errs)),
		Credential: transporthook.NewCredential(&credentials.Credentials{
			Kind:    credentials.KindChatGPT,
			ChatGPT: &credentials.ChatGPTLogin{AccessToken: token, AccountID: demoAccountID},
			Source:  "agentauth demo",
		}).(transport.Credential),
		AgentIdentity: featureflag.New(true),
		// A fresh store per run: the identity is provisioned against this
		// run's server and must not be reused against another.
		Fleet: transport.Fleet{IdentityStore: credentials.NewMemoryStore()},
		Tuning: transport.Tuning{
			ChatGPTBaseURL:    base,
			AuthAPIBaseURL:    base,
			AllowedOrigins:    []string{base},
			AllowInsecureHTTP: strings.HasPrefix(base, "http://"),
		},
		Observer: &transport.Observer{OnEvent: regs.record},
		// Registrations bypass the timing wrapper, so the time a request
		// waits for one counts as latency added by the middleware.
		HTTPClient: &http.Client{Transport: netTransport},
	}
	if opts.threads > taskcache.DefaultCapacity {
		// Evicting a live thread would re-register it and skew the counts.
		o.Tuning.MaxThreads = opts.threads
	}
	testhooks.Of(&o).AgentSoftware = identity.Software{HarnessID: "agentauth-demo"}
	return transport.New(timedRoundTripper{next: netTransport, base: true}, o)
}

// demoNetTransport is the network under the transport: one connection per
// worker stays open, since the default of two idle connections per host
// would make most requests dial.
func demoNetTransport(concurrency int) *http.Transport {
	netTransport := http.DefaultTransport.(*http.Transport).Clone()
	if testDial != nil {
		netTransport.DialContext = testDial
	}
	netTransport.MaxIdleConnsPerHost = concurrency + 2
	return netTransport
}
