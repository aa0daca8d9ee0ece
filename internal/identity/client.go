package identity

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/useragent"
)

// Version is the agentauth version reported in agent registrations and the
// default User-Agent.
const Version = "0.1.0"

// Defaults of the [Client] fields.
const (
	DefaultTaskTimeout       = 30 * time.Second
	DefaultAgentTimeout      = 15 * time.Second
	DefaultJWKSTimeout       = 10 * time.Second
	DefaultMaxResponseBytes  = 1 << 20
	DefaultAgentAttempts     = 3
	DefaultTaskAttempts      = 3
	DefaultAgentRetryBackoff = 250 * time.Millisecond
	// MaxRetryWait caps every wait between agent-registration attempts,
	// including one a server asks for with Retry-After.
	MaxRetryWait = 5 * time.Second
)

// DefaultUserAgent is sent when [Client.UserAgent] is empty:
// "agentauth/" and the module version from the build info ("devel" when
// the build records none), the User-Agent of every auth call agentauth
// makes.
var DefaultUserAgent = useragent.Value()

// defaultHTTPClient is used when Client.HTTPClient is nil. It refuses
// redirects: registration endpoints never redirect, and following one would
// resend a signed body or a Bearer token somewhere else.
var defaultHTTPClient = &http.Client{
	Transport: http.DefaultTransport,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Client calls the AuthAPI (agent and task registration) and fetches the
// Agent Identity JWKS. The zero value is ready to use with the documented
// defaults; a nil *Client behaves as the zero value. A Client is safe for
// concurrent use; do not change its fields after first use.
//
// Each method makes its own bounded HTTP exchange and returns a
// *[RegistrationError] on any failure. The Client does no caching: single
// flight, backoff between calls and persistence are the caller's job.
type Client struct {
	// HTTPClient sends the requests. Nil means a client on
	// http.DefaultTransport that does not follow redirects. Do not pass a
	// client whose transport is the agentauth transport itself.
	HTTPClient *http.Client

	// AuthAPIBase is the AuthAPI base URL, e.g.
	// "https://auth.openai.com/api/accounts". Empty means
	// [DefaultAuthAPIBase]; a trailing "/" is ignored. See [ResolveBaseURLs].
	AuthAPIBase string

	// Now is the clock used for registration signatures and Retry-After
	// dates. Nil means time.Now.
	Now func() time.Time

	// TaskTimeout bounds one task registration. 0 means
	// [DefaultTaskTimeout] (30 s).
	TaskTimeout time.Duration
	// AgentTimeout bounds each agent-registration attempt. 0 means
	// [DefaultAgentTimeout] (15 s).
	AgentTimeout time.Duration
	// JWKSTimeout bounds a JWKS fetch. 0 means [DefaultJWKSTimeout] (10 s).
	JWKSTimeout time.Duration

	// MaxResponseBytes bounds how much of any response body is read; a
	// larger successful body fails with [ErrResponseTooLarge]. 0 means
	// [DefaultMaxResponseBytes] (1 MiB).
	MaxResponseBytes int64

	// UserAgent is sent as User-Agent. Empty means [DefaultUserAgent].
	UserAgent string
	// Originator is sent as the "originator" header, the value Codex
	// clients name themselves with (for callers that must look like a
	// given Codex client). Empty sends none.
	Originator string

	// AgentAttempts is the maximum number of agent-registration attempts;
	// only temporary failures are retried. 0 means [DefaultAgentAttempts]
	// (3).
	AgentAttempts int
	// TaskAttempts is the maximum number of attempts of one task
	// registration; only temporary failures are retried, with the same
	// waits as agent registration, and never beyond the deadline of the
	// context passed in. 0 means [DefaultTaskAttempts] (3).
	TaskAttempts int
	// AgentRetryBackoff is the base of the jittered exponential wait between
	// agent- and task-registration attempts: attempt n waits a random duration in
	// [b·2ⁿ⁻¹/2, b·2ⁿ⁻¹], capped at [MaxRetryWait]. A server's Retry-After,
	// capped at MaxRetryWait, replaces it. 0 means
	// [DefaultAgentRetryBackoff] (250 ms).
	AgentRetryBackoff time.Duration
	// Sleep waits d or until ctx ends, returning ctx.Err() in the latter
	// case; any non-nil result stops the retries. Nil means a timer-based
	// wait. Tests inject a hook that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand supplies the backoff jitter. Nil means crypto/rand.
	Rand io.Reader

	// lastTaskURL holds the *taskURL last built (see taskRegistrationURL).
	// An atomic.Value, not an atomic.Pointer, keeps Client copyable as a
	// settings struct; a copy shares the memo, which names its inputs.
	lastTaskURL atomic.Value
}

// validate rejects settings that cannot mean anything sensible.
func (c *Client) validate() error {
	switch {
	case c.TaskTimeout < 0, c.AgentTimeout < 0, c.JWKSTimeout < 0:
		return fmt.Errorf("%w: negative timeout", errInvalidRequest)
	case c.MaxResponseBytes < 0:
		return fmt.Errorf("%w: negative MaxResponseBytes", errInvalidRequest)
	case c.AgentAttempts < 0, c.TaskAttempts < 0:
		return fmt.Errorf("%w: negative attempt count", errInvalidRequest)
	case c.AgentRetryBackoff < 0:
		return fmt.Errorf("%w: negative AgentRetryBackoff", errInvalidRequest)
	}
	return nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return defaultHTTPClient
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func orDefault[T ~int | ~int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// authAPIBase returns the normalised AuthAPI base after checking that it is
// an absolute http(s) URL without query or fragment.
func (c *Client) authAPIBase() (string, error) {
	base := normalizeBase(c.AuthAPIBase)
	if base == "" {
		return DefaultAuthAPIBase, nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: AuthAPIBase must be an absolute http(s) URL without query or fragment", errInvalidRequest)
	}
	return base, nil
}
