// Once a refresh failed permanently, a Token call looks at the store again
// (has a new login arrived?) at most once a second by the source's clock,
// on the caller's context and without holding the source's lock, and
// concurrent callers share that one read: a store that hangs (Redis
// unreachable without a timeout, auth.json on a stuck network file system)
// holds up no caller past its own deadline, and a failed login costs no
// store read per request.
package credentials_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

type rvpHangingStore struct {
	*credentials.AuthFileCoordinator
	hang    atomic.Bool
	release chan struct{}
	loads   atomic.Int64
}

func (c *rvpHangingStore) Load(ctx context.Context) (*credentials.TokenSet, error) {
	c.loads.Add(1)
	if c.hang.Load() {
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.AuthFileCoordinator.Load(ctx)
}

func TestPermanentFailureHonoursTheCallersContext(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	now := start
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }

	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"refresh_token_expired"}}`))
	}))
	defer endpoint.Close()
	home := t.TempDir()
	doc, _ := json.Marshal(map[string]any{
		"OPENAI_API_KEY": nil,
		"tokens":         map[string]any{"id_token": "", "access_token": "opaque-access-token", "refresh_token": "rt-dead", "account_id": "acct-p"},
		"last_refresh":   start.Add(-9 * 24 * time.Hour).Format(time.RFC3339),
	})
	if err := os.WriteFile(filepath.Join(home, credentials.AuthFileName), doc, 0o600); err != nil {
		t.Fatal(err)
	}
	store := &rvpHangingStore{AuthFileCoordinator: credentials.NewAuthFileCoordinator(home), release: make(chan struct{})}
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
		Coordinator: store,
		TokenURL:    endpoint.URL + "/oauth/token",
		Getenv:      func(string) string { return "" },
		Now:         clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := src.Token(ctx); !errors.Is(err, credentials.ErrLoginExpired) {
		t.Fatalf("first Token = %v, want ErrLoginExpired", err)
	}

	// Rate-limited: five calls within a second read the store once.
	before := store.loads.Load()
	for range 5 {
		if _, err := src.Token(ctx); !errors.Is(err, credentials.ErrLoginExpired) {
			t.Fatalf("Token = %v, want the remembered failure", err)
		}
	}
	if reads := store.loads.Load() - before; reads != 1 {
		t.Fatalf("5 Token calls within a second read the store %d times, want 1", reads)
	}

	// A second later the store is read again, and it hangs: concurrent
	// callers share that one read and each returns by its own deadline.
	advance(time.Second)
	store.hang.Store(true)
	defer close(store.release)
	before = store.loads.Load()
	const callers = 8
	var wg sync.WaitGroup
	took := make(chan time.Duration, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancelShort()
			start := time.Now()
			_, err := src.Token(short)
			if err == nil {
				t.Error("Token succeeded on a hanging store")
			}
			took <- time.Since(start)
		}()
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Token with a 100 ms context still blocked after 5 s on a hanging store")
	}
	close(took)
	for d := range took {
		if d > 2*time.Second {
			t.Errorf("Token with a 100 ms context returned after %v", d)
		}
	}
	if reads := store.loads.Load() - before; reads != 1 {
		t.Fatalf("%d concurrent callers read the hanging store %d times, want one shared read", callers, reads)
	}
}
