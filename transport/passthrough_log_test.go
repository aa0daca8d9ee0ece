package transport

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/internal/credentials"
)

// logRecorder is a slog.Handler that keeps every record at or above level.
type logRecorder struct {
	level slog.Level
	mu    sync.Mutex
	recs  []slog.Record
}

func (h *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// records returns the records whose message contains msg, each rendered
// as "message key=value ...".
func (h *logRecorder) records(msg string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if !strings.Contains(r.Message, msg) {
			continue
		}
		s := r.Message
		r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
		out = append(out, s)
	}
	return out
}

const passMsg = "not first-party"

func passTransport(t *testing.T, h slog.Handler, creds *credentials.Credentials) (*Transport, *recordingBase) {
	t.Helper()
	base := &recordingBase{}
	rt, err := newTransport(base, config{Credentials: creds, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	return rt, base
}

func sendTo(t *testing.T, rt *Transport, url string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Error(err) // not Fatal: called from goroutines too
		return
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
}

// TestPassThroughLogsOncePerOrigin: a transport holding a credential that
// sends a request to an origin outside its allow-list without that
// credential says so at debug level, once per origin, naming the origin but
// neither the path, the query nor the credential.
func TestPassThroughLogsOncePerOrigin(t *testing.T) {
	const key = "sk-passthrough-secret"
	h := &logRecorder{level: slog.LevelDebug}
	rt, base := passTransport(t, h, &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: key})

	for range 3 {
		sendTo(t, rt, "http://127.0.0.1:8787/v1/responses?token=query-secret")
	}
	sendTo(t, rt, "https://test.example/v1/x")
	sendTo(t, rt, "https://chatgpt.com/backend-api/x") // first-party: authenticated, not logged

	if got := base.auth.Load().(string); got != "Bearer "+key {
		t.Fatalf("first-party request sent Authorization %q", got)
	}
	recs := h.records(passMsg)
	if len(recs) != 2 {
		t.Fatalf("got %d pass-through records, want one per origin (2):\n%s", len(recs), strings.Join(recs, "\n"))
	}
	for i, want := range []string{"origin=http://127.0.0.1:8787", "origin=https://test.example"} {
		if !strings.Contains(recs[i], want) || !strings.Contains(recs[i], "ChatGPTBaseURL") {
			t.Errorf("record %d = %q, want %s and a hint naming ChatGPTBaseURL", i, recs[i], want)
		}
		for _, secret := range []string{key, "query-secret", "/v1/"} {
			if strings.Contains(recs[i], secret) {
				t.Errorf("record %d holds %q: %s", i, secret, recs[i])
			}
		}
	}
}

// TestPassThroughLogQuietWhenNotNeeded: nothing is logged, and nothing
// remembered, when the logger does not want debug records or when the
// transport holds no credential (then no request carries one and there is
// nothing to explain).
func TestPassThroughLogQuietWhenNotNeeded(t *testing.T) {
	info := &logRecorder{level: slog.LevelInfo}
	rt, _ := passTransport(t, info, &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: "sk-quiet"})
	sendTo(t, rt, "https://test.example/")
	if n := rt.passLog.n.Load(); n != 0 || len(info.records("")) != 0 {
		t.Errorf("info logger: %d origins remembered, %d records", n, len(info.records("")))
	}

	debug := &logRecorder{level: slog.LevelDebug}
	none, _ := passTransport(t, debug, nil)
	sendTo(t, none, "https://test.example/")
	if recs := debug.records(passMsg); len(recs) != 0 {
		t.Errorf("transport without a credential logged %q", recs)
	}
}

// TestPassThroughLogIsBounded: a transport remembers at most
// maxLoggedOrigins origins; the last record says further ones are not
// logged, and they are not.
func TestPassThroughLogIsBounded(t *testing.T) {
	h := &logRecorder{level: slog.LevelDebug}
	rt, _ := passTransport(t, h, &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: "sk-bounded"})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2 * maxLoggedOrigins {
				sendTo(t, rt, fmt.Sprintf("https://o%d-%d.example/", g, i))
			}
		}()
	}
	wg.Wait()
	recs := h.records(passMsg)
	if len(recs) != maxLoggedOrigins {
		t.Fatalf("%d records for %d distinct origins, want %d", len(recs), 8*maxLoggedOrigins, maxLoggedOrigins)
	}
	size := 0
	rt.passLog.seen.Range(func(any, any) bool { size++; return true })
	if size != maxLoggedOrigins {
		t.Errorf("remembers %d origins, want %d", size, maxLoggedOrigins)
	}
	last := 0
	for _, r := range recs {
		if strings.Contains(r, "further_origins_logged=false") {
			last++
		}
	}
	if last != 1 {
		t.Errorf("%d records announce the end of logging, want 1", last)
	}
	long := "https://" + strings.Repeat("a", 2*maxLoggedOriginLen) + ".example/"
	sendTo(t, rt, long)
	if len(h.records(passMsg)) != maxLoggedOrigins {
		t.Error("an origin beyond the bound was logged")
	}
}

// TestPassThroughLogCostsNothingWhenDisabled: with a logger that drops
// debug records (the default), the pass-through branch allocates what it
// allocated before the log existed: nothing of its own.
func TestPassThroughLogCostsNothingWhenDisabled(t *testing.T) {
	rt, _ := passTransport(t, slog.DiscardHandler, &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: "sk-allocs"})
	bare, _ := passTransport(t, slog.DiscardHandler, nil)
	req, _ := http.NewRequest(http.MethodGet, "https://test.example/", nil)
	measure := func(rt *Transport) float64 {
		return testing.AllocsPerRun(200, func() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		})
	}
	if with, without := measure(rt), measure(bare); with != without {
		t.Errorf("pass-through with a credential: %v allocs, without one %v", with, without)
	}
}
