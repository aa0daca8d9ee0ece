package credentials

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/identityreplace"
)

// rotationNumber reads the N of an access token "at-rot-N".
func rotationNumber(af *AuthFile) int {
	if af == nil || af.Tokens == nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimPrefix(af.Tokens.AccessToken, "at-rot-"))
	if err != nil {
		return -1
	}
	return n
}

func writeRotation(t *testing.T, dir, path string, n int) {
	data := fmt.Sprintf(`{"OPENAI_API_KEY":null,"tokens":{"id_token":"","access_token":"at-rot-%d","refresh_token":"rt-rot-%d","account_id":"acct-1"},"codex_member":%d}`, n, n, n)
	tmp := filepath.Join(dir, fmt.Sprintf(".codex-tmp-%d", n))
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

// SaveAgentIdentity never rolls back a token rotation that another
// agentauth process writes meanwhile (issue #12, item 15): every agentauth
// writer takes agentauth's lock.
func TestSaveAgentIdentityNeverRollsBackRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, AuthFileName)
	writeRotation(t, dir, path, 0)
	const saves = 300

	var stop atomic.Bool
	var wg sync.WaitGroup
	var last atomic.Int64
	wg.Add(1)
	go func() { // another agentauth process rotating: lock, write, rename, unlock
		defer wg.Done()
		lock := flock.New(filepath.Join(dir, AuthStorageLockFileName))
		for n := 1; !stop.Load() && n < 1_000_000; n++ {
			if err := lock.Lock(); err != nil {
				t.Error(err)
				return
			}
			writeRotation(t, dir, path, n)
			last.Store(int64(n))
			lock.Unlock()
			// Paced like a real login (rotations are rare): a writer that
			// re-locked at once would starve the polling saves below.
			time.Sleep(200 * time.Microsecond)
		}
	}()
	rollbacks := 0
	store := NewFileStore(path)
	for i := range saves {
		rec := &identity.Record{AgentRuntimeID: fmt.Sprintf("rt-%d", i), AgentPrivateKey: fixturePrivateKey, AccountID: "acct-1"}
		before := last.Load()
		// Each save replaces the previous runtime (the first identity of a
		// login wins otherwise).
		if err := store.SaveAgentIdentity(identityreplace.With(testCtx(t), fmt.Sprintf("rt-%d", i-1)), rec); err != nil {
			t.Fatal(err)
		}
		af, err := store.Load()
		if err != nil {
			t.Fatalf("torn or invalid file: %v", err)
		}
		if n := rotationNumber(af); n >= 0 && int64(n) < before {
			rollbacks++
		}
	}
	stop.Store(true)
	wg.Wait()
	if rollbacks > 0 {
		t.Fatalf("%d of %d saves rolled back a rotation", rollbacks, saves)
	}
}

// A writer that takes no lock (the Codex CLI) and lands between an
// update's read and its rename does not have its rotation rolled back: the
// file is compared with what was read just before the rename and the
// update is redone on the new content. (What no file system can close is
// the few microseconds between that comparison and the rename itself.)
func TestUpdateRedoneWhenAnUnlockedWriterLandsMeanwhile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, AuthFileName)
	writeRotation(t, dir, path, 0)
	store := NewFileStore(path)
	calls := 0
	err := store.Update(testCtx(t), func(af *AuthFile) error {
		calls++
		if calls == 1 {
			writeRotation(t, dir, path, 1) // lands after our read, before our rename
		}
		af.PersonalAccessToken = "at-written-by-the-update"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("fn ran %d times, want 2 (the update redone once on the new content)", calls)
	}
	af, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := rotationNumber(af); n != 1 {
		t.Errorf("rotation %d in the file, want 1: the unlocked writer's rotation was rolled back", n)
	}
	if af.PersonalAccessToken != "at-written-by-the-update" {
		t.Error("the redone update's own change is missing")
	}
}

// A reader of a file rewritten in place (truncate and write, as the Codex
// CLI does) keeps the last good token instead of failing
// (issue #12, first suspicion).
func TestFileTokenSourceToleratesInPlaceRewrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, AuthFileName)
	doc := func(n int) []byte {
		return []byte(fmt.Sprintf(`{"OPENAI_API_KEY":null,"tokens":{"id_token":"","access_token":"at-inplace-%d","refresh_token":"rt","account_id":"acct-1"},"padding":"%s"}`,
			n%2, strings.Repeat("p", 16<<10)))
	}
	if err := os.WriteFile(path, doc(0), 0o600); err != nil {
		t.Fatal(err)
	}
	src := NewFileTokenSource(path)
	if _, err := src.Token(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; !stop.Load() && n < 1_000_000; n++ {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Error(err)
				return
			}
			d := doc(n)
			f.Write(d[:len(d)/2])
			f.Write(d[len(d)/2:])
			f.Close()
		}
	}()
	failures := 0
	for range 2000 {
		if _, err := src.Token(testCtx(t)); err != nil {
			failures++
		}
	}
	stop.Store(true)
	wg.Wait()
	if failures > 0 {
		t.Fatalf("%d of 2000 reads failed while the file was rewritten in place", failures)
	}
}
