package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

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
