package credentials

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fltCrashEnv names the auth.json the crash helper process updates; the
// helper does nothing without it.
const fltCrashEnv = "AGENTAUTH_FLT_CRASH_AUTH_JSON"

// fltCrashReady is the line the helper prints once the new content is
// fully written to the temp file and the rename is about to happen.
const fltCrashReady = "FLT-CRASH-READY "

// fltBigUpdate rewrites the login and adds about 512 KiB, so the write
// takes real work and a torn file would be obvious.
func fltBigUpdate(af *AuthFile) error {
	if af.Tokens == nil {
		af.Tokens = &Tokens{}
	}
	af.Tokens.AccessToken = "at-flt-after-crash"
	pad, err := json.Marshal(strings.Repeat("crash-padding-", 512<<10/14))
	if err != nil {
		return err
	}
	return af.SetExtra("flt_padding", pad)
}

// TestFltCrashHelper is not a test: it is the child process of
// TestFltCrashBetweenWriteAndRename. It updates the auth.json named by
// fltCrashEnv with a rename hook that announces itself and then blocks
// until the parent kills the process.
func TestFltCrashHelper(t *testing.T) {
	path := os.Getenv(fltCrashEnv)
	if path == "" {
		t.Skip("helper process for TestFltCrashBetweenWriteAndRename")
	}
	s := NewFileStore(path)
	s.rename = func(oldpath, _ string) error {
		fmt.Fprintln(os.Stdout, fltCrashReady+oldpath)
		time.Sleep(time.Minute) // the parent kills us long before
		return errors.New("flt crash helper: not killed")
	}
	err := s.Update(fltCtx(t), fltBigUpdate)
	t.Fatalf("Update returned without being killed: %v", err)
}

func fltCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func fltNoEnv(string) string { return "" }

// fltReadAll reads path, failing the test on error.
func fltReadAll(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestFltCrashBetweenWriteAndRename kills (SIGKILL) a real writer process
// after it has written and synced the new auth.json to its temp file but
// before the rename: the previous auth.json is byte-identical and valid,
// the file lock the dead process held is released by the kernel, the
// leftover temp file is never taken for auth.json, and a later Update
// succeeds.
func TestFltCrashBetweenWriteAndRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, AuthFileName)
	orig := []byte(`{"auth_mode":"chatgpt","tokens":{"access_token":"at-flt-before-crash","account_id":"acct-flt"},"x_unknown":{"keep":true}}`)
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestFltCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), fltCrashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	ready := make(chan string, 1)
	go func() {
		defer close(ready)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if tmp, ok := strings.CutPrefix(sc.Text(), fltCrashReady); ok {
				ready <- tmp
				return
			}
		}
	}()
	var tmp string
	select {
	case tmp = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the helper never reached the rename")
	}
	if tmp == "" {
		t.Fatal("the helper exited before the rename")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix: no deferred code runs
		t.Fatal(err)
	}
	killed = true
	werr := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Success() {
		t.Fatalf("helper ended with %v, want killed", werr)
	}

	// The crash happened where intended: the complete new content is in
	// the temp file, next to auth.json.
	if filepath.Dir(tmp) != dir {
		t.Fatalf("temp file %s is not next to auth.json", tmp)
	}
	pending, err := ParseAuthFile(fltReadAll(t, tmp))
	if err != nil || pending.Tokens.AccessToken != "at-flt-after-crash" {
		t.Fatalf("the temp file does not hold the complete new content: %v", err)
	}
	// auth.json is untouched and valid.
	if got := fltReadAll(t, path); !bytes.Equal(got, orig) {
		t.Fatalf("auth.json changed by a writer killed before the rename:\n%s", got)
	}
	af, err := NewFileStore(path).Load()
	if err != nil || af.Tokens.AccessToken != "at-flt-before-crash" {
		t.Fatalf("auth.json after the crash: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, AuthStorageLockFileName)); err != nil {
		t.Fatalf("the lock file of the dead writer is gone (%v); the test did not cover a stale lock", err)
	}

	// A later writer is not blocked by the stale lock file or confused by
	// the leftover temp file.
	err = NewFileStore(path).Update(fltCtx(t), func(a *AuthFile) error {
		if a.Tokens.AccessToken != "at-flt-before-crash" {
			return fmt.Errorf("Update read %q, not auth.json", a.Tokens.AccessToken)
		}
		a.Tokens.AccessToken = "at-flt-after-restart"
		return nil
	})
	if err != nil {
		t.Fatalf("Update after the crash: %v", err)
	}
	af, err = NewFileStore(path).Load()
	if err != nil || af.Tokens.AccessToken != "at-flt-after-restart" {
		t.Fatalf("auth.json after the next Update: %v", err)
	}
	var compact bytes.Buffer
	if raw, ok := af.Extra("x_unknown"); !ok || json.Compact(&compact, raw) != nil || compact.String() != `{"keep":true}` {
		t.Errorf("unknown member lost: %s", raw)
	}
	if _, ok := af.Extra("flt_padding"); ok {
		t.Error("the crashed writer's content reached auth.json")
	}
	c, err := Load(LoadOptions{CodexHome: dir, Getenv: fltNoEnv})
	if err != nil || c.Kind != KindChatGPT || c.ChatGPT.AccessToken != "at-flt-after-restart" {
		t.Fatalf("Load after recovery: %v", err)
	}
}

// TestFltCrashRenameFails is the in-process variant: a rename that fails
// after the temp file was written leaves auth.json byte-identical, removes
// the temp file, releases the lock (another store updates at once) and
// returns the failure.
func TestFltCrashRenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, AuthFileName)
	orig := []byte(`{"OPENAI_API_KEY":"sk-flt-before","x_unknown":[1,2,3]}`)
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewFileStore(path)
	boom := errors.New("flt: rename failed")
	var tmp string
	s.rename = func(oldpath, _ string) error {
		tmp = oldpath
		if data, err := os.ReadFile(oldpath); err != nil || !json.Valid(data) || len(data) < 512<<10 {
			t.Errorf("temp file incomplete before the rename (%d bytes, %v)", len(data), err)
		}
		return boom
	}
	if err := s.Update(fltCtx(t), fltBigUpdate); !errors.Is(err, boom) {
		t.Fatalf("Update: %v, want the rename failure", err)
	}
	if got := fltReadAll(t, path); !bytes.Equal(got, orig) {
		t.Fatal("auth.json changed although the rename failed")
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file %s left behind: %v", tmp, err)
	}
	// The lock was released: another store (as another process would)
	// updates immediately, and the same store works again once rename does.
	if err := NewFileStore(path).Update(fltCtx(t), func(a *AuthFile) error {
		k := "sk-flt-other"
		a.OpenAIAPIKey = &k
		return nil
	}); err != nil {
		t.Fatalf("Update by another store after the failure: %v", err)
	}
	s.rename = os.Rename
	if err := s.Update(fltCtx(t), fltBigUpdate); err != nil {
		t.Fatalf("Update after rename recovered: %v", err)
	}
	af, err := s.Load()
	if err != nil || af.OpenAIAPIKey == nil || *af.OpenAIAPIKey != "sk-flt-other" || af.Tokens.AccessToken != "at-flt-after-crash" {
		t.Fatalf("final auth.json: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}
