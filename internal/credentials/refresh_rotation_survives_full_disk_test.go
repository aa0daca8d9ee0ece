package credentials

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// fullDiskSource is a source over e.home whose auth.json writes fail with
// ENOSPC while the returned flag is set.
func fullDiskSource(t *testing.T, e *refreshEnv) (*RefreshingTokenSource, *atomic.Bool) {
	t.Helper()
	full := new(atomic.Bool)
	coord := NewAuthFileCoordinator(e.home)
	coord.store.writeFault = func() error {
		if full.Load() {
			return syscall.ENOSPC
		}
		return nil
	}
	s, err := NewRefreshingTokenSource(RefreshOptions{
		Coordinator: coord,
		TokenURL:    e.srv.TokenURL(),
		Getenv:      fakeEnv(nil),
		Now:         e.clock.Now,
		jitter:      func(d time.Duration) time.Duration { return d },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, full
}

// A rotation made while the disk is full reaches auth.json once the disk
// has room again: on a later Token call, in the background.
func TestRefreshRotationReachesFileAfterDiskFull(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	s, full := fullDiskSource(t, e)
	full.Store(true)
	e.clock.Advance(61 * time.Minute)
	tok, err := s.Token(testCtx(t))
	if err != nil {
		t.Fatalf("refresh with a full disk: %v", err)
	}
	if af := loadAuthFile(t, e.home); af.Tokens.AccessToken != e.login.AccessToken {
		t.Fatal("auth.json changed although every write failed")
	}
	// Still full: Token calls keep serving the held token.
	if _, err := s.Token(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	full.Store(false)
	got := ""
	for i := 0; i < 500 && got != tok.AccessToken.Reveal(); i++ {
		e.clock.Advance(time.Second) // past the write's backoff
		if _, err := s.Token(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		got = loadAuthFile(t, e.home).Tokens.AccessToken
	}
	if got != tok.AccessToken.Reveal() {
		t.Fatal("the rotation never reached auth.json after the disk had room again")
	}
	if s.TokenRequests() != 1 {
		t.Fatalf("%d token requests, want 1", s.TokenRequests())
	}
	// The next process starts from the rotation, not from the spent token.
	e.clock.Advance(61 * time.Minute)
	if _, err := e.source().Token(testCtx(t)); err != nil {
		t.Fatalf("the next process: %v", err)
	}
	if n := e.srv.Stats().RejectionsByReason[identitytest.CodeRefreshTokenReused]; n != 0 {
		t.Fatalf("%d spent refresh tokens sent", n)
	}
}

// With no Token call after the disk has room again, Close writes the
// rotation.
func TestRefreshRotationReachesFileAtClose(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	s, full := fullDiskSource(t, e)
	full.Store(true)
	e.clock.Advance(61 * time.Minute)
	tok, err := s.Token(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	s.settle()
	full.Store(false)
	s.Close()
	if got := loadAuthFile(t, e.home).Tokens.AccessToken; got != tok.AccessToken.Reveal() {
		t.Fatal("Close did not write the rotation the store had refused")
	}
}

// Close stays bounded when the disk is still full: the file stays intact,
// the rotation is lost to it (logged), and Close returns.
func TestRefreshCloseWithDiskStillFullReturns(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	s, full := fullDiskSource(t, e)
	full.Store(true)
	e.clock.Advance(61 * time.Minute)
	if _, err := s.Token(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung with the disk full")
	}
	if got := loadAuthFile(t, e.home).Tokens.AccessToken; got != e.login.AccessToken {
		t.Fatal("auth.json changed although every write failed")
	}
}
