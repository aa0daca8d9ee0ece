package login

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Polling goes on through RFC 8628 answers (400 authorization_pending,
// slow_down) as well as Codex's 403/404, and stops on expired_token or
// any other error.
func TestDevicePollRFC8628Answers(t *testing.T) {
	old := slowDownStep
	slowDownStep = time.Millisecond
	defer func() { slowDownStep = old }()
	var polls atomic.Int32
	answers := []struct {
		status int
		body   string
	}{
		{403, `{"error":"authorization_pending"}`},
		{400, `{"error":"authorization_pending"}`},
		{400, `{"error":"slow_down"}`},
		{404, ``},
		{200, `{"authorization_code":"ac","code_challenge":"c","code_verifier":"v"}`},
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[min(int(polls.Add(1))-1, len(answers)-1)]
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	defer hs.Close()
	r, err := Options{CodexHome: t.TempDir(), Issuer: hs.URL, Getenv: env()}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	dc := &deviceCode{DeviceAuthID: "d", UserCode: "U", Interval: minPollInterval}
	g, err := r.pollDevice(testCtx(t), hs.URL+"/poll", dc)
	if err != nil || g.AuthorizationCode != "ac" || polls.Load() != 5 {
		t.Fatalf("grant %v, err %v after %d polls", g, err, polls.Load())
	}

	for body, want := range map[string]error{`{"error":"expired_token"}`: context.DeadlineExceeded, `{"error":"access_denied"}`: nil} {
		hs2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(body))
		}))
		_, err := r.pollDevice(testCtx(t), hs2.URL+"/poll", dc)
		hs2.Close()
		if err == nil || (want != nil && !errors.Is(err, want)) || (want == nil && errors.Is(err, context.DeadlineExceeded)) {
			t.Errorf("%s: err = %v", body, err)
		}
	}
}
