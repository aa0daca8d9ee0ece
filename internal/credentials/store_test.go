package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/agentauth/agentauth/internal/identity"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFileStoreLoadMissing(t *testing.T) {
	s := NewFileStore(filepath.Join(t.TempDir(), "nope", AuthFileName))
	af, err := s.Load()
	if err != nil || af == nil || af.Tokens != nil || af.OpenAIAPIKey != nil {
		t.Fatalf("Load of a missing file = %v, %v", af, err)
	}
}

func TestFileStoreUpdateCreatesDirAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "codex")
	path := filepath.Join(dir, AuthFileName)
	s := NewFileStore(path)
	key := "sk-new"
	if err := s.Update(testCtx(t), func(af *AuthFile) error {
		af.AuthMode = AuthModeAPIKey
		af.OpenAIAPIKey = &key
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
		}
	}
	c, err := Load(LoadOptions{CodexHome: dir, Getenv: fakeEnv(nil)})
	if err != nil || c.Kind != KindAPIKey || c.APIKey != "sk-new" {
		t.Fatalf("Load after Update = %v, %v", c, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != AuthFileName && e.Name() != AuthStorageLockFileName {
			t.Errorf("stray file %s", e.Name())
		}
	}
}

func TestFileStoreUpdateKeepsUnknownFieldsAndMode(t *testing.T) {
	home := homeWith(t, "chatgpt.json")
	path := filepath.Join(home, AuthFileName)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	s := NewFileStore(path)
	if err := s.Update(testCtx(t), func(af *AuthFile) error {
		af.Tokens.AccessToken = "at-rotated"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	var b, a map[string]any
	json.Unmarshal(before, &b)
	json.Unmarshal(after, &a)
	b["tokens"].(map[string]any)["access_token"] = "at-rotated"
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("only the access token should change:\nbefore %v\nafter  %v", b, a)
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode after write = %v, want 0600", fi.Mode().Perm())
		}
	}
}

func TestFileStoreUpdateErrorsWriteNothing(t *testing.T) {
	home := homeWith(t, "chatgpt.json")
	path := filepath.Join(home, AuthFileName)
	before, _ := os.ReadFile(path)
	fiBefore, _ := os.Stat(path)
	s := NewFileStore(path)
	boom := errors.New("boom")
	if err := s.Update(testCtx(t), func(af *AuthFile) error {
		af.Tokens = nil
		return boom
	}); err != boom {
		t.Fatalf("err = %v, want fn's error as is", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(before) {
		t.Error("file changed although fn failed")
	}
	if fi, _ := os.Stat(path); !os.SameFile(fi, fiBefore) {
		t.Error("file replaced although fn failed")
	}
	// An unchanged result is not rewritten either (readers keep their cache).
	if err := s.Update(testCtx(t), func(*AuthFile) error { return nil }); err != nil {
		t.Fatal(err)
	}
	out, _ := s.Load()
	canonical, _ := out.Marshal()
	if err := os.WriteFile(path, canonical, 0o600); err != nil {
		t.Fatal(err)
	}
	fiCanon, _ := os.Stat(path)
	if err := s.Update(testCtx(t), func(*AuthFile) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); !os.SameFile(fi, fiCanon) {
		t.Error("a no-op Update replaced the file")
	}

	// A file that cannot be parsed is never overwritten.
	broken := []byte(`{"OPENAI_API_KEY": `)
	os.WriteFile(path, broken, 0o600)
	if err := s.Update(testCtx(t), func(af *AuthFile) error { return nil }); !errors.Is(err, ErrInvalidAuthFile) {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(broken) {
		t.Error("broken file was overwritten")
	}
}

func TestFileStoreCrashBeforeRenameKeepsOldFile(t *testing.T) {
	home := homeWith(t, "chatgpt.json")
	path := filepath.Join(home, AuthFileName)
	before, _ := os.ReadFile(path)
	s := NewFileStore(path)
	crash := errors.New("simulated crash")
	var tmpSeen string
	s.rename = func(oldpath, _ string) error {
		tmpSeen = oldpath
		data, err := os.ReadFile(oldpath)
		if err != nil || !json.Valid(data) {
			t.Errorf("temp file not complete before rename: %v", err)
		}
		if runtime.GOOS != "windows" {
			if fi, _ := os.Stat(oldpath); fi.Mode().Perm() != 0o600 {
				t.Errorf("temp file mode %v", fi.Mode().Perm())
			}
		}
		return crash
	}
	err := s.Update(testCtx(t), func(af *AuthFile) error { af.Tokens.AccessToken = "at-new"; return nil })
	if !errors.Is(err, crash) {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(before) {
		t.Error("auth.json changed although the rename failed")
	}
	if filepath.Dir(tmpSeen) != home {
		t.Errorf("temp file %s not in the same directory", tmpSeen)
	}
	if _, err := os.Stat(tmpSeen); !os.IsNotExist(err) {
		t.Error("temp file left behind")
	}
}

func TestFileStoreConcurrentWriters(t *testing.T) {
	home := homeWith(t, "chatgpt.json")
	path := filepath.Join(home, AuthFileName)
	ctx := testCtx(t)
	const writers = 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := NewFileStore(path) // separate stores: only the file lock serialises them
			errs <- s.Update(ctx, func(af *AuthFile) error {
				n := 0
				if raw, ok := af.Extra("counter"); ok {
					if err := json.Unmarshal(raw, &n); err != nil {
						return err
					}
				}
				if err := af.SetExtra("counter", json.RawMessage(strconv.Itoa(n+1))); err != nil {
					return err
				}
				return af.SetExtra(fmt.Sprintf("writer_%02d", i), json.RawMessage(`true`))
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	af, err := NewFileStore(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := af.Extra("counter")
	if string(raw) != strconv.Itoa(writers) {
		t.Errorf("counter = %s, want %d (lost update)", raw, writers)
	}
	for i := range writers {
		if _, ok := af.Extra(fmt.Sprintf("writer_%02d", i)); !ok {
			t.Errorf("writer_%02d lost", i)
		}
	}
	if _, ok := af.Extra("codex_custom"); !ok || af.Tokens.AccessToken != fixtureAccessToken {
		t.Error("original content lost")
	}
	// Also through one shared store.
	s := NewFileStore(path)
	var wg2 sync.WaitGroup
	for range writers {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			if err := s.Update(ctx, func(af *AuthFile) error {
				var n int
				raw, _ := af.Extra("counter")
				json.Unmarshal(raw, &n)
				return af.SetExtra("counter", json.RawMessage(strconv.Itoa(n+1)))
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg2.Wait()
	af, _ = s.Load()
	if raw, _ := af.Extra("counter"); string(raw) != strconv.Itoa(2*writers) {
		t.Errorf("counter = %s, want %d", raw, 2*writers)
	}
}

func TestFileStoreUpdateHonoursContextWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), AuthFileName)
	holder := flock.New(filepath.Join(filepath.Dir(path), AuthStorageLockFileName))
	if ok, err := holder.TryLock(); !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	defer holder.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	called := false
	go func() {
		done <- NewFileStore(path).Update(ctx, func(*AuthFile) error { called = true; return nil })
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Update did not stop when its context was cancelled")
	}
	if called {
		t.Error("fn ran without the lock")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("file written without the lock")
	}
}

func TestFileStoreSymlinkKeepsLink(t *testing.T) {
	home := t.TempDir()
	targetDir := t.TempDir()
	target := filepath.Join(targetDir, "real.json")
	data, _ := os.ReadFile("testdata/chatgpt.json")
	os.WriteFile(target, data, 0o600)
	link := filepath.Join(home, AuthFileName)
	if err := os.Symlink(target, link); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	s := NewFileStore(link)
	if err := s.Update(testCtx(t), func(af *AuthFile) error { af.Tokens.AccessToken = "at-via-link"; return nil }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("symlink replaced by a file")
	}
	af, err := parseFile(t, target)
	if err != nil || af.Tokens.AccessToken != "at-via-link" {
		t.Fatalf("target not updated: %v %v", af, err)
	}
}

func parseFile(t *testing.T, p string) (*AuthFile, error) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return ParseAuthFile(data)
}

func TestFileStoreZeroValue(t *testing.T) {
	var s FileStore
	if err := s.Update(testCtx(t), func(*AuthFile) error { return nil }); err == nil {
		t.Error("zero FileStore accepted an Update")
	}
}

func TestFileStoreIdentityStore(t *testing.T) {
	ctx := testCtx(t)
	home := homeWith(t, "chatgpt.json") // login of acct-claim-123
	path := filepath.Join(home, AuthFileName)
	s := NewFileStore(path)

	if rec, err := s.LoadAgentIdentity(ctx, Login{AccountID: "acct-claim-123", UserID: "user-1"}); rec != nil || err != nil {
		t.Fatalf("empty store: %v, %v", rec, err)
	}
	rec := testRecord("acct-claim-123")
	if err := s.SaveAgentIdentity(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.AgentRuntimeID = "mutated-after-save"
	got, err := s.LoadAgentIdentity(ctx, Login{AccountID: "acct-claim-123", UserID: "user-1"})
	if err != nil || got == nil || got.AgentRuntimeID != "agent-123" || got.AgentPrivateKey != fixturePrivateKey {
		t.Fatalf("LoadAgentIdentity = %v, %v", got, err)
	}
	if other, err := s.LoadAgentIdentity(ctx, Login{AccountID: "acct-other"}); other != nil || err != nil {
		t.Errorf("another account got %v, %v", other, err)
	}
	// The record is stored beside the login, which stays the credential.
	c, err := Load(LoadOptions{CodexHome: home, Getenv: fakeEnv(nil)})
	if err != nil || c.Kind != KindChatGPT {
		t.Fatalf("Load = %v, %v", c, err)
	}
	af, _ := s.Load()
	if _, ok := af.Extra("codex_custom"); !ok {
		t.Error("unknown member lost by SaveAgentIdentity")
	}

	// A record for another account is refused: the login changed.
	if err := s.SaveAgentIdentity(ctx, testRecord("acct-other")); !errors.Is(err, ErrLoginChanged) {
		t.Errorf("err = %v, want ErrLoginChanged", err)
	}
	// After a logout (file gone) nothing is resurrected.
	os.Remove(path)
	if err := s.SaveAgentIdentity(ctx, testRecord("acct-claim-123")); !errors.Is(err, ErrLoginChanged) {
		t.Errorf("err = %v, want ErrLoginChanged", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("SaveAgentIdentity recreated a logged-out auth.json")
	}
	// Invalid records are refused before touching the file.
	bad := testRecord("acct-claim-123")
	bad.AgentPrivateKey = "bm90LWEta2V5"
	if err := s.SaveAgentIdentity(ctx, bad); !errors.Is(err, identity.ErrInvalidKey) {
		t.Errorf("err = %v, want identity.ErrInvalidKey", err)
	}
	if err := s.SaveAgentIdentity(ctx, nil); err == nil {
		t.Error("nil record accepted")
	}
	// A stored record that became invalid is an error, not a silent nil.
	os.WriteFile(path, []byte(`{"agent_identity_record": {"agent_runtime_id": "r", "agent_private_key": "bm90", "account_id": "a"}}`), 0o600)
	if _, err := s.LoadAgentIdentity(ctx, Login{AccountID: "a"}); !errors.Is(err, identity.ErrInvalidKey) {
		t.Errorf("err = %v", err)
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := testCtx(t)
	m := NewMemoryStore()
	if rec, err := m.LoadAgentIdentity(ctx, Login{AccountID: "a", UserID: "user-1"}); rec != nil || err != nil {
		t.Fatalf("empty: %v %v", rec, err)
	}
	rec := testRecord("a")
	if err := m.SaveAgentIdentity(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.AgentRuntimeID = "mutated"
	got, _ := m.LoadAgentIdentity(ctx, Login{AccountID: "a", UserID: "user-1"})
	if got == nil || got.AgentRuntimeID != "agent-123" {
		t.Fatalf("got %v", got)
	}
	got.AgentRuntimeID = "mutated-copy"
	if again, _ := m.LoadAgentIdentity(ctx, Login{AccountID: "a", UserID: "user-1"}); again.AgentRuntimeID != "agent-123" {
		t.Error("store shares its record with callers")
	}
	if other, _ := m.LoadAgentIdentity(ctx, Login{AccountID: "b"}); other != nil {
		t.Error("wrong account matched")
	}
	bad := testRecord("a")
	bad.AgentRuntimeID = ""
	if err := m.SaveAgentIdentity(ctx, bad); err == nil {
		t.Error("invalid record accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.LoadAgentIdentity(cctx, Login{AccountID: "a", UserID: "user-1"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}

	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := fmt.Sprintf("acct-%d", i%4)
			if err := m.SaveAgentIdentity(ctx, testRecord(acct)); err != nil {
				t.Error(err)
			}
			if r, err := m.LoadAgentIdentity(ctx, Login{AccountID: acct, UserID: "user-1"}); err != nil || r == nil || r.AccountID != acct {
				t.Errorf("concurrent load: %v %v", r, err)
			}
		}()
	}
	wg.Wait()
}
