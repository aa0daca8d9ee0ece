package transport_test

// A fleet's pieces in Options.Fleet: the refresh coordinator is built once
// from the login auth.json holds, the provisioned identity goes to the
// fleet's identity store and thread tasks through its task store; misuse
// fails clearly.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/transport"
)

// memCoordinator is a shared store's refresh coordination in memory: what
// a fleet's Redis would hold for one login.
type memCoordinator struct {
	lock chan struct{}

	mu    sync.Mutex
	set   *credentials.TokenSet
	swaps int
}

func newMemCoordinator(initial *credentials.TokenSet) *memCoordinator {
	cp := *initial
	return &memCoordinator{lock: make(chan struct{}, 1), set: &cp}
}

func (c *memCoordinator) Lock(ctx context.Context) (func(), error) {
	select {
	case c.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() { once.Do(func() { <-c.lock }) }, nil
}

func (c *memCoordinator) Load(context.Context) (*credentials.TokenSet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *c.set
	return &cp, nil
}

func (c *memCoordinator) CompareAndSwap(_ context.Context, prev, next *credentials.TokenSet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev.AccessToken != c.set.AccessToken || prev.RefreshToken != c.set.RefreshToken {
		return credentials.ErrTokenSetChanged
	}
	cp := *next
	c.set = &cp
	c.swaps++
	return nil
}

// countingTaskStore is a TaskStore that registers every key once and
// counts the calls.
type countingTaskStore struct {
	mu      sync.Mutex
	tasks   map[taskcache.StoreKey]string
	resolve int
}

func (s *countingTaskStore) Resolve(ctx context.Context, key taskcache.StoreKey, register func(context.Context) (string, error)) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resolve++
	if id, ok := s.tasks[key]; ok {
		return id, nil
	}
	id, err := register(ctx)
	if err != nil {
		return "", err
	}
	if s.tasks == nil {
		s.tasks = map[taskcache.StoreKey]string{}
	}
	s.tasks[key] = id
	return id, nil
}

func (s *countingTaskStore) Forget(_ context.Context, key taskcache.StoreKey, taskID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tasks[key] == taskID {
		delete(s.tasks, key)
	}
	return nil
}

// A fleet's pieces plugged into the one constructor: the coordinator is
// built once from the login auth.json holds and refreshes the expired
// login (auth.json is then left alone: the fleet's store holds the
// rotation), the identity is provisioned into the fleet's identity store
// rather than auth.json, and thread tasks go through the task store.
func TestLoadWithFleetPieces(t *testing.T) {
	var offset atomic.Int64 // the server's clock runs 2 h late while the login is issued
	offset.Store(int64(-2 * time.Hour))
	srv := newIdentityServer(t, identitytest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	home, login := chatGPTHome(t, srv)
	offset.Store(0)
	before, err := os.ReadFile(filepath.Join(home, credentials.AuthFileName))
	if err != nil {
		t.Fatal(err)
	}
	var built []credentials.Login
	var coord *memCoordinator
	identities := credentials.NewMemoryStore()
	tasks := &countingTaskStore{}
	o := fromHome(srv, newHTTPBase(t), home, envVars{"CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get)
	o.flag = featureflag.New(true)
	o.fleet = transport.Fleet{
		RefreshCoordinator: func(l credentials.Login, initial *credentials.TokenSet) (credentials.RefreshCoordinator, error) {
			built = append(built, l)
			if initial.AccessToken != login.AccessToken || initial.RefreshToken != login.RefreshToken ||
				initial.IDToken != login.IDToken || initial.AccountID != "acct-one" || initial.LastRefresh.IsZero() {
				t.Error("the coordinator was not seeded with auth.json's tokens")
			}
			coord = newMemCoordinator(initial)
			return coord, nil
		},
		IdentityStore: identities,
		TaskStore:     tasks,
	}
	rt := newEnv(t, o).rt
	if len(built) != 1 || built[0] != (credentials.Login{AccountID: "acct-one", UserID: "user-one"}) {
		t.Fatalf("coordinator built for %v, want once for acct-one/user-one", built)
	}
	ctx := transport.WithThread(context.Background(), "thread-fleet")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/echo", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}

	if st := srv.Stats(); st.TokenRefreshes != 1 || st.AgentRegistrations != 1 || st.ThreadTaskRegistrations != 1 {
		t.Fatalf("server: %d refreshes, %d agent and %d thread registrations; want one each", st.TokenRefreshes, st.AgentRegistrations, st.ThreadTaskRegistrations)
	}
	if cur, _ := coord.Load(ctx); coord.swaps != 1 || cur.RefreshToken == login.RefreshToken {
		t.Fatalf("the rotation did not reach the fleet's coordinator (%d swaps)", coord.swaps)
	}
	after, _ := os.ReadFile(filepath.Join(home, credentials.AuthFileName))
	if !bytes.Equal(before, after) {
		t.Error("auth.json changed: the fleet's store, not auth.json, holds the login and its identity")
	}
	rec, err := identities.LoadAgentIdentity(ctx, credentials.Login{AccountID: "acct-one", UserID: "user-one"})
	if err != nil || rec == nil {
		t.Fatalf("the provisioned identity is not in the fleet's identity store: %v", err)
	}
	if tasks.resolve != 1 || len(tasks.tasks) != 1 {
		t.Fatalf("task store: %d resolves, %d tasks", tasks.resolve, len(tasks.tasks))
	}
}

// Misuse of the fleet options fails clearly, and the coordinator is built
// only for a ChatGPT login that agentauth refreshes. (An identity store or
// a task store given twice, once also refused here, can no longer be
// given: each has one place, Options.Fleet.)
func TestLoadFleetOptionErrors(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	opts := func() envOptions {
		o := fromHome(srv, nil, home, envVars{}.get)
		o.flag = featureflag.New(false)
		return o
	}
	load := func(o envOptions) error {
		_, err := tryEnv(t, o)
		return err
	}

	o := opts()
	o.fleet.TaskStore = &countingTaskStore{} // one of them is fine
	if err := load(o); err != nil {
		t.Errorf("Fleet.TaskStore alone: %v", err)
	}

	boom := errors.New("no sealing key")
	o = opts()
	o.fleet.RefreshCoordinator = func(credentials.Login, *credentials.TokenSet) (credentials.RefreshCoordinator, error) {
		return nil, boom
	}
	if err := load(o); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "transport: Fleet.RefreshCoordinator: ") {
		t.Errorf("failing coordinator: %v", err)
	}
	o = opts()
	o.fleet.RefreshCoordinator = func(credentials.Login, *credentials.TokenSet) (credentials.RefreshCoordinator, error) {
		return nil, nil
	}
	if err := load(o); err == nil {
		t.Error("a nil coordinator was accepted")
	}

	called := false
	build := func(credentials.Login, *credentials.TokenSet) (credentials.RefreshCoordinator, error) {
		called = true
		return nil, boom
	}
	o = opts()
	o.codexHome = t.TempDir()
	o.getenv = envVars{"CODEX_API_KEY": "sk-fleet-test"}.get
	o.fleet.RefreshCoordinator = build
	if err := load(o); err != nil || called {
		t.Errorf("API key: err %v, coordinator built %v", err, called)
	}
	o = opts()
	o.detect, o.credential = false, transport.ChatGPT(credentials.StaticTokenSource(credentials.Token{AccessToken: "at-own"}))
	o.fleet.RefreshCoordinator = build
	if err := load(o); err != nil || called {
		t.Errorf("own token source: err %v, coordinator built %v", err, called)
	}
}
