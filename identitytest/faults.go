package identitytest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// Fault describes how the server misbehaves on a route. Steps apply in this
// order: Latency, then Hang or DropConnection, then the response override.
// A fault with only Latency and/or RetryAfter delays the request and adds
// the header, and the route then answers normally; any other field replaces
// the route's answer entirely (nothing is verified or registered).
type Fault struct {
	// Status is the status code of the injected answer (200..599). Zero
	// means 200 when a body override is set; with no body override a
	// non-zero Status answers {"error":"injected_fault"}.
	Status int
	// RetryAfter, when non-empty, is sent as the Retry-After header.
	RetryAfter string
	// Latency delays the request before anything else happens. When the
	// client gives up or the server closes first, the connection is
	// aborted without an answer, so Close never waits for the delay.
	Latency time.Duration
	// Body, when non-nil, is sent verbatim (for example malformed JSON).
	Body []byte
	// OversizeBytes, when positive, answers a JSON-looking body of exactly
	// that many bytes ({"padding":"xxx..."}), for testing read limits.
	OversizeBytes int
	// DropConnection hijacks the connection and closes it without an
	// answer.
	DropConnection bool
	// EmptyTaskID answers task registration with 200 {"task_id":""}.
	EmptyTaskID bool
	// MissingTaskID answers task registration with 200 {} (no id at all).
	MissingTaskID bool
	// BadEncryptedTaskID answers task registration with 200 and an
	// encrypted_task_id that is well-formed base64 of a sealed box
	// addressed to some other key, so opening it fails.
	BadEncryptedTaskID bool
	// Hang never answers: the handler waits until the client gives up or
	// the server closes.
	Hang bool
	// Times applies the fault to the next Times requests on the route;
	// zero applies it until ClearFaults.
	Times int
}

// overridesResponse reports whether the fault replaces the route's answer.
func (f Fault) overridesResponse() bool {
	return f.Status != 0 || f.Body != nil || f.OversizeBytes > 0 || f.DropConnection ||
		f.EmptyTaskID || f.MissingTaskID || f.BadEncryptedTaskID || f.Hang
}

func (f Fault) validate() error {
	switch {
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return fmt.Errorf("field Status %d is outside 200..599", f.Status)
	case f.Latency < 0:
		return errors.New("field Latency is negative")
	case f.OversizeBytes < 0:
		return errors.New("field OversizeBytes is negative")
	case f.Times < 0:
		return errors.New("field Times is negative")
	case strings.ContainsAny(f.RetryAfter, "\r\n"):
		return errors.New("field RetryAfter contains a line break")
	}
	n := 0
	for _, b := range []bool{f.Body != nil, f.OversizeBytes > 0, f.DropConnection, f.EmptyTaskID,
		f.MissingTaskID, f.BadEncryptedTaskID, f.Hang} {
		if b {
			n++
		}
	}
	if n > 1 {
		return errors.New("fields Body, OversizeBytes, DropConnection, EmptyTaskID, MissingTaskID, BadEncryptedTaskID and Hang are mutually exclusive")
	}
	return nil
}

type faultState struct {
	f         Fault
	remaining int // 0 = until cleared
}

// InjectFault makes route misbehave as f describes, replacing any fault
// already set on that route. It panics on an unknown route or a
// contradictory fault (both are bugs in the test, as with httptest).
func (s *Server) InjectFault(route Route, f Fault) {
	if !route.valid() {
		panic(fmt.Sprintf("identitytest: InjectFault: unknown route %q", route))
	}
	if err := f.validate(); err != nil {
		panic("identitytest: InjectFault: " + err.Error())
	}
	f.Body = bytes.Clone(f.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = &faultState{f: f, remaining: f.Times}
}

// ClearFaults removes the fault on route; the route answers normally again.
func (s *Server) ClearFaults(route Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, route)
}

// takeFault returns the fault for the next request on route, consuming one
// of its Times.
func (s *Server) takeFault(route Route) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.faults[route]
	if !ok {
		return Fault{}, false
	}
	if st.remaining > 0 {
		st.remaining--
		if st.remaining == 0 {
			delete(s.faults, route)
		}
	}
	s.stats.FaultsServed++
	return st.f, true
}

// serveFault applies f and reports whether it answered (or abandoned) the
// request, in which case the route must not run.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			panic(http.ErrAbortHandler)
		case <-s.closing:
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if !f.overridesResponse() {
		return false
	}
	switch {
	case f.Hang:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		// Abort rather than return, or net/http would complete the
		// exchange with an empty 200 (when embedded via Handler).
		panic(http.ErrAbortHandler)
	case f.DropConnection:
		dropConnection(w)
		return true
	}

	var body []byte
	switch {
	case f.Body != nil:
		body = f.Body
	case f.OversizeBytes > 0:
		body = oversizeBody(f.OversizeBytes)
	case f.EmptyTaskID:
		body = []byte(`{"task_id":""}`)
	case f.MissingTaskID:
		body = []byte(`{}`)
	case f.BadEncryptedTaskID:
		body = s.badEncryptedTaskID()
	default:
		body = []byte(`{"error":"injected_fault"}`)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return true
}

// dropConnection closes the connection without writing a response. Hijack
// works for HTTP/1; otherwise ErrAbortHandler makes net/http reset the
// stream without logging.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func oversizeBody(n int) []byte {
	const head, tail = `{"padding":"`, `"}`
	if n < len(head)+len(tail) {
		return bytes.Repeat([]byte{'x'}, n)
	}
	b := make([]byte, 0, n)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte{'x'}, n-len(head)-len(tail))...)
	return append(b, tail...)
}

// badEncryptedTaskID seals a task id to a throwaway key, so the answer is
// well-formed but no client key can open it.
func (s *Server) badEncryptedTaskID() []byte {
	pub, _, err := ed25519.GenerateKey(s.rand)
	if err == nil {
		if sealed, err := identity.SealTaskID(pub, "task-not-for-you", s.rand); err == nil {
			return []byte(`{"encrypted_task_id":"` + sealed + `"}`)
		}
	}
	return []byte(`{"encrypted_task_id":"bm90IGEgc2VhbGVkIGJveA=="}`)
}
