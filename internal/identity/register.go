package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
	"unicode/utf8"

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

// taskRegistrationURL returns <AuthAPIBase>/v1/agent/<runtimeID>/task/register.
// The last URL built is remembered with the base and runtime it was built
// from, so a client registering tasks for one runtime parses and checks its
// base once, not per registration.
func (c *Client) taskRegistrationURL(runtimeID string) (string, error) {
	if u, _ := c.lastTaskURL.Load().(*taskURL); u != nil && u.base == c.AuthAPIBase && u.runtimeID == runtimeID {
		return u.url, nil
	}
	base, err := c.authAPIBase()
	if err != nil {
		return "", err
	}
	u := &taskURL{base: c.AuthAPIBase, runtimeID: runtimeID, url: base + "/v1/agent/" + url.PathEscape(runtimeID) + "/task/register"}
	c.lastTaskURL.Store(u)
	return u.url, nil
}

// taskURL is a task-registration URL and what it was built from.
type taskURL struct{ base, runtimeID, url string }

// taskRegistrationJSON is the task-registration body, byte for byte what
// marshalJSON makes of taskRegistrationBody, built by appending. The
// timestamp and signature never need escaping (RFC 3339 and base64); a
// thread key that does (a quote, a backslash, a control character, U+2028
// or U+2029) goes through the encoder instead.
func taskRegistrationJSON(ts, sig, ref string) ([]byte, error) {
	if !jsonPlain(ts) || !jsonPlain(sig) || !jsonPlain(ref) {
		return marshalJSON(taskRegistrationBody{Timestamp: ts, Signature: sig, ExternalTaskRef: ref})
	}
	b := make([]byte, 0, len(`{"timestamp":"","signature":"","external_task_ref":""}`)+len(ts)+len(sig)+len(ref))
	b = append(b, `{"timestamp":"`...)
	b = append(b, ts...)
	b = append(b, `","signature":"`...)
	b = append(b, sig...)
	if ref != "" {
		b = append(b, `","external_task_ref":"`...)
		b = append(b, ref...)
	}
	return append(b, `"}`...), nil
}

// jsonPlain reports whether s (valid UTF-8) is encoded in a JSON string
// as itself by an encoder that does not escape HTML: no quote, backslash,
// control character, U+2028 or U+2029.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\':
			return false
		case c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9):
			return false
		}
	}
	return true
}

// taskRegistrationBody is the wire body of task registration. Field order is the wire
// order; external_task_ref is absent (not null, not "") for the process
// task.
type taskRegistrationBody struct {
	Timestamp       string `json:"timestamp"`
	Signature       string `json:"signature"`
	ExternalTaskRef string `json:"external_task_ref,omitempty"`
}

// marshalJSON encodes v compactly without HTML escaping and without the
// encoder's trailing newline.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// RegisterTask registers a task for the agent runtime runtimeID and returns
// its task id.
//
// It POSTs to <AuthAPIBase>/v1/agent/<runtimeID>/task/register
// without an Authorization header; the body
// {"timestamp":T,"signature":S} is signed with key over
// "<runtimeID>:<T>" at [Client.Now]. A non-empty externalTaskRef (a thread
// key) is added as "external_task_ref"; for the process task pass "" and the
// member is absent. Each attempt is bounded by [Client.TaskTimeout];
// temporary failures (429, 5xx, timeouts, connection errors) are retried
// up to [Client.TaskAttempts] attempts in all, signed afresh, after the
// waits of agent registration (Retry-After honoured, capped at
// [MaxRetryWait]), but never past ctx's deadline.
//
// The response is a JSON object; the first non-empty string among task_id,
// taskId (plaintext), encrypted_task_id and encryptedTaskId (a sealed box
// opened with key) is the task id. Every failure is a *[RegistrationError]:
// a non-2xx status carries the status and a truncated body; a canceled or
// expired ctx matches [context.Canceled] or [context.DeadlineExceeded].
// The task id is returned only on success.
func (c *Client) RegisterTask(ctx context.Context, key *PrivateKey, runtimeID, externalTaskRef string) (taskID string, err error) {
	if c == nil {
		c = &Client{}
	}
	fail := func(err error) (string, error) {
		return "", &RegistrationError{Op: OpTaskRegistration, Err: err}
	}
	if err := c.validate(); err != nil {
		return fail(err)
	}
	if key == nil {
		return fail(fmt.Errorf("%w: nil key", ErrInvalidKey))
	}
	if runtimeID == "" || !utf8.ValidString(runtimeID) {
		return fail(fmt.Errorf("%w: agent runtime id must be non-empty valid UTF-8", errInvalidRequest))
	}
	regURL, err := c.taskRegistrationURL(runtimeID)
	if err != nil {
		return fail(err)
	}
	if !utf8.ValidString(externalTaskRef) {
		return fail(fmt.Errorf("%w: external task ref must be valid UTF-8", errInvalidRequest))
	}

	attempts := orDefault(c.TaskAttempts, DefaultTaskAttempts)
	for n := 1; ; n++ {
		// Signed per attempt: a retry must carry a fresh timestamp.
		sig, ts := RegistrationSignature(key, runtimeID, c.now())
		body, err := taskRegistrationJSON(ts, sig, externalTaskRef)
		if err != nil {
			return fail(fmt.Errorf("%w: encoding body: %w", errInvalidRequest, err))
		}
		data, rerr := c.exchange(ctx, exchange{
			op:      OpTaskRegistration,
			method:  http.MethodPost,
			url:     regURL,
			body:    body,
			timeout: orDefault(c.TaskTimeout, DefaultTaskTimeout),
			secrets: []string{sig},
		})
		if rerr == nil {
			id, err := taskIDFromResponse(data, key)
			if err != nil {
				return "", &RegistrationError{Op: OpTaskRegistration, Attempts: n, Err: err}
			}
			return id, nil
		}
		rerr.Attempts = n
		if n >= attempts || !rerr.Temporary() {
			return "", rerr
		}
		if stop := c.waitToRetry(ctx, n, rerr); stop != nil {
			return "", stop
		}
	}
}

// waitToRetry waits before attempt n+1 after rerr. It returns nil to go
// on, or the error to return: rerr itself when the wait would outlast ctx's
// deadline (the registration's own bound), or a caller-done error when ctx
// ended while waiting. The server's Retry-After is compared with the
// deadline before it is capped: a server that asks for more time than is
// left would only answer the capped retry as it did this attempt, so rerr
// (temporary, carrying RetryAfter for the caller's own backoff) is
// returned at once instead of after waits that hold every caller.
func (c *Client) waitToRetry(ctx context.Context, n int, rerr *RegistrationError) *RegistrationError {
	d := c.backoff(n, rerr.RetryAfter)
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left < d || left < rerr.RetryAfter {
			return rerr
		}
	}
	if werr := c.wait(ctx, d); werr != nil {
		cause := werr
		if cerr := ctx.Err(); cerr != nil {
			cause = ensureIs(werr, cerr)
		}
		return &RegistrationError{
			Op:       rerr.Op,
			Attempts: n,
			Err:      &callerDoneError{fmt.Errorf("stopped waiting to retry (%v): %w", retrySummary(rerr), cause)},
		}
	}
	return nil
}

// MaxTaskIDLen is the longest task id accepted from task registration, in
// bytes. Task ids are short opaque strings; a larger one would be cached
// and sent in every AgentAssertion header, so it is a malformed response.
const MaxTaskIDLen = 512

// taskIDFromResponse picks the task id out of a registration response
// (plaintext members first, then encrypted ones; null and "" count as
// absent) and bounds its length.
func taskIDFromResponse(data []byte, key *PrivateKey) (string, error) {
	id, err := pickTaskID(data, key)
	if err == nil && len(id) > MaxTaskIDLen {
		return "", fmt.Errorf("%w: task id of %d bytes, at most %d allowed", ErrMalformedResponse, len(id), MaxTaskIDLen)
	}
	return id, err
}

// taskRegistrationResponse holds the members of a registration response
// that can carry the task id, undecoded. Decoding into it rather than a
// map costs no map and no per-member allocation; like any struct decoding
// it also accepts a member name that matches only case-insensitively.
type taskRegistrationResponse struct {
	TaskID             json.RawMessage `json:"task_id"`
	TaskIDCamel        json.RawMessage `json:"taskId"`
	EncryptedTaskID    json.RawMessage `json:"encrypted_task_id"`
	EncryptedTaskIDCam json.RawMessage `json:"encryptedTaskId"`
}

func pickTaskID(data []byte, key *PrivateKey) (string, error) {
	var r taskRegistrationResponse
	if err := json.Unmarshal(data, &r); err != nil || string(bytes.TrimSpace(data)) == "null" {
		return "", fmt.Errorf("%w: task registration response is not a JSON object", ErrMalformedResponse)
	}
	for _, m := range []struct {
		name      string
		raw       json.RawMessage
		encrypted bool
	}{{"task_id", r.TaskID, false}, {"taskId", r.TaskIDCamel, false}, {"encrypted_task_id", r.EncryptedTaskID, true}, {"encryptedTaskId", r.EncryptedTaskIDCam, true}} {
		s, present, err := rawStringMember(m.raw, m.name)
		if err != nil {
			return "", err
		}
		if !present {
			continue
		}
		if !m.encrypted {
			return s, nil
		}
		plain, err := key.OpenTaskID(s)
		if err != nil {
			return "", err
		}
		if plain == "" {
			return "", fmt.Errorf("%w: %s decrypts to an empty id", ErrMissingTaskID, m.name)
		}
		return plain, nil
	}
	return "", ErrMissingTaskID
}

// stringMember returns fields[name] as a string. Absent, null and "" report
// present == false; a non-string value is a malformed response.
func stringMember(fields map[string]json.RawMessage, name string) (s string, present bool, err error) {
	return rawStringMember(fields[name], name)
}

// rawStringMember is stringMember of the member name, raw as received (nil
// when absent).
func rawStringMember(raw json.RawMessage, name string) (s string, present bool, err error) {
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("%w: %s is not a string", ErrMalformedResponse, name)
	}
	return s, s != "", nil
}

// exchange is one bounded HTTP request to an identity endpoint.
type exchange struct {
	op      string
	method  string
	url     string
	body    []byte // nil for no body
	header  http.Header
	timeout time.Duration
	secrets []string // removed from quoted error bodies
}

// exchange performs x once and returns the body of a 2xx response, read up
// to MaxResponseBytes. Failures are classified here so that
// RegistrationError.Temporary can tell the call's own timeout from the
// caller giving up.
func (c *Client) exchange(ctx context.Context, x exchange) ([]byte, *RegistrationError) {
	fail := func(err error) ([]byte, *RegistrationError) {
		return nil, &RegistrationError{Op: x.op, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(&callerDoneError{err})
	}
	// A context that ends within the timeout already bounds the call (a
	// task registration's context carries the cache's own bound): a second
	// timer and context would change nothing, since classifyTransportError
	// looks at the caller's context first either way.
	callCtx := ctx
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > x.timeout {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, x.timeout)
		defer cancel()
	}

	var body io.Reader
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	req, err := http.NewRequestWithContext(callCtx, x.method, x.url, body)
	if err != nil {
		return fail(fmt.Errorf("%w: building request: %w", errInvalidRequest, err))
	}
	for k, vs := range x.header {
		req.Header[k] = vs
	}
	// Registrations carry exactly what current Codex sends (JSON, the
	// credential, FedRAMP routing, a User-Agent); only the JWKS fetch,
	// which has no body, asks for JSON explicitly.
	if x.body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)
	if c.Originator != "" {
		req.Header.Set(useragent.HeaderOriginator, c.Originator)
	}

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fail(classifyTransportError(ctx, callCtx, x.timeout, err))
	}
	defer resp.Body.Close()

	limit := orDefault(c.MaxResponseBytes, DefaultMaxResponseBytes)
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fail(classifyTransportError(ctx, callCtx, x.timeout, fmt.Errorf("reading response: %w", err)))
	}
	tooLarge := int64(len(data)) > limit
	if tooLarge {
		data = data[:limit]
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &RegistrationError{
			Op:         x.op,
			StatusCode: resp.StatusCode,
			Body:       errorBody(data, x.secrets...),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
		}
	}
	if tooLarge {
		return fail(fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, limit))
	}
	return data, nil
}

// classifyTransportError distinguishes the caller's context ending (never
// temporary) from the call's own timeout (temporary) and keeps both
// matchable with errors.Is.
func classifyTransportError(caller, call context.Context, timeout time.Duration, err error) error {
	if cerr := caller.Err(); cerr != nil {
		return &callerDoneError{ensureIs(err, cerr)}
	}
	if call.Err() == context.DeadlineExceeded {
		return fmt.Errorf("no response within %s: %w", timeout, ensureIs(err, context.DeadlineExceeded))
	}
	return err
}

// wait sleeps d through the Sleep hook or a timer, stopping when ctx ends.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff returns the wait after failed attempt n (1-based): the server's
// Retry-After when given, else equal-jitter exponential backoff; both capped
// at MaxRetryWait.
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, MaxRetryWait)
	}
	d := orDefault(c.AgentRetryBackoff, DefaultAgentRetryBackoff)
	for i := 1; i < n && d < MaxRetryWait; i++ {
		d *= 2
	}
	d = min(d, MaxRetryWait)
	half := d / 2
	return half + time.Duration(c.jitter()*float64(d-half))
}

// jitter returns a uniform value in [0, 1), or 1 (no jitter, the longer
// wait) when the random source fails.
func (c *Client) jitter() float64 {
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 1
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}
