//go:build unix

package credentials

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Secrets planted in the hostile files of these tests; none may appear in
// an error. Every one contains "flt-SECRET".
const (
	fltAccess  = "at-flt-SECRET-access-hostile-0001"
	fltRefresh = "rt-flt-SECRET-refresh-hostile-0002"
	fltAPIKey  = "sk-flt-SECRET-apikey-hostile-0003"
	fltKey     = "MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHgSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="
)

var fltSecrets = []string{fltAccess, fltRefresh, fltAPIKey, fltKey, "flt-SECRET"}

// fltCheckErr fails unless err is a *LoadError for path (and field, when
// non-empty) that names them and carries no secret in any rendering. For a
// symlinked path the error may name the link's target instead: FileStore
// Update reports the file it resolved. It only uses t.Errorf, so it may run
// on another goroutine.
func fltCheckErr(t *testing.T, what string, err error, path, field string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Errorf("%s: %T %v is not a *LoadError", what, err, err)
		return
	}
	named := path
	if target, terr := filepath.EvalSymlinks(path); terr == nil && le.Path == target {
		named = target
	}
	if le.Path != named || !strings.Contains(err.Error(), named) {
		t.Errorf("%s: error %q does not name the path %s", what, err, path)
	}
	if field != "" && (le.Field != field || !strings.Contains(err.Error(), field)) {
		t.Errorf("%s: error %q names field %q, want %q", what, err, le.Field, field)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, sec := range fltSecrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s: error leaks a secret (%d bytes)", what, len(sec))
			}
		}
	}
}

// fltEveryReader runs every reader of auth.json on path — Load, FileStore
// Load and Update, the file token source — and checks that each fails with
// a clear error and that Update neither calls its function nor changes the
// file. It only uses t.Errorf, so it may run on another goroutine.
func fltEveryReader(t *testing.T, path, field string, wantIs error) {
	t.Helper()
	before := fltSnapshot(path)
	_, err := Load(LoadOptions{CodexHome: filepath.Dir(path), Getenv: fltNoEnv})
	fltCheckErr(t, "Load", err, path, field)
	if wantIs != nil && !errors.Is(err, wantIs) {
		t.Errorf("Load: %v does not match %v", err, wantIs)
	}
	_, err = NewFileStore(path).Load()
	fltCheckErr(t, "FileStore.Load", err, path, field)
	called := false
	err = NewFileStore(path).Update(fltCtx(t), func(*AuthFile) error { called = true; return nil })
	fltCheckErr(t, "FileStore.Update", err, path, field)
	if called {
		t.Error("FileStore.Update called its function on a file it could not read")
	}
	if after := fltSnapshot(path); after != before {
		t.Error("FileStore.Update changed a file it could not read")
	}
	_, err = NewFileTokenSource(path).Token(fltCtx(t))
	if err == nil {
		t.Error("file token source: no error")
		return
	}
	for _, sec := range fltSecrets {
		if strings.Contains(err.Error(), sec) || strings.Contains(fmt.Sprintf("%+v", err), sec) {
			t.Errorf("file token source: error leaks a secret (%d bytes)", len(sec))
		}
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("file token source: error %q does not name the path", err)
	}
}

// fltSnapshot describes what path resolves to — type, size, modification
// time and its first MaxAuthFileSize+1 bytes — without opening anything
// but a regular file, and without reading a huge one whole.
func fltSnapshot(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "error: " + err.Error()
	}
	desc := fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
	if !fi.Mode().IsRegular() {
		return desc
	}
	f, err := os.Open(path)
	if err != nil {
		return desc + " unreadable"
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, MaxAuthFileSize+1))
	return desc + " " + string(data)
}

func fltWrite(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), AuthFileName)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFltHostileAuthFileWrongTypes: a member of the wrong JSON type — even
// one whose value is itself a secret — is an error naming the member and
// the path, never the value, from every reader of auth.json.
func TestFltHostileAuthFileWrongTypes(t *testing.T) {
	good := `"OPENAI_API_KEY":"` + fltAPIKey + `"`
	cases := []struct{ name, json, field string }{
		{"auth_mode number", `{"auth_mode":7,` + good + `}`, "auth_mode"},
		{"api key object", `{"OPENAI_API_KEY":{"k":"` + fltAPIKey + `"}}`, "OPENAI_API_KEY"},
		{"api key array", `{"OPENAI_API_KEY":["` + fltAPIKey + `"]}`, "OPENAI_API_KEY"},
		{"tokens string", `{"tokens":"` + fltAccess + `",` + good + `}`, "tokens"},
		{"access token array", `{"tokens":{"access_token":["` + fltAccess + `"],"refresh_token":"` + fltRefresh + `"}}`, "tokens.access_token"},
		{"access token number", `{"tokens":{"access_token":12345678901234567890}}`, "tokens.access_token"},
		{"refresh token object", `{"tokens":{"access_token":"` + fltAccess + `","refresh_token":{"v":"` + fltRefresh + `"}}}`, "tokens.refresh_token"},
		{"id token bool", `{"tokens":{"access_token":"` + fltAccess + `","id_token":true}}`, "tokens.id_token"},
		{"account id number", `{"tokens":{"access_token":"` + fltAccess + `","account_id":42}}`, "tokens.account_id"},
		{"last_refresh number", `{"last_refresh":1714000000,` + good + `}`, "last_refresh"},
		{"last_refresh not a time", `{"last_refresh":"` + fltAccess + `",` + good + `}`, "last_refresh"},
		{"agent_identity array", `{"agent_identity":["` + fltAccess + `"],` + good + `}`, "agent_identity"},
		{"record string", `{"agent_identity_record":"` + fltKey + `"}`, "agent_identity_record"},
		{"record key number", `{"agent_identity_record":{"agent_runtime_id":"rt","agent_private_key":7}}`, "agent_identity_record.agent_private_key"},
		{"record fedramp string", `{"agent_identity_record":{"agent_private_key":"` + fltKey + `","chatgpt_account_is_fedramp":"yes"}}`, "agent_identity_record.chatgpt_account_is_fedramp"},
		{"top level array", `["` + fltAccess + `"]`, ""},
		{"truncated inside a secret", `{"tokens":{"access_token":"` + fltAccess, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := fltWrite(t, c.json)
			fltEveryReader(t, path, c.field, ErrInvalidAuthFile)
		})
	}
}

// TestFltHostileAuthFileHuge: a file over MaxAuthFileSize — one byte over,
// or a sparse 8 GiB file — is refused after reading at most the cap, by
// every reader, without quoting it.
func TestFltHostileAuthFileHuge(t *testing.T) {
	t.Run("one byte over", func(t *testing.T) {
		head := `{"OPENAI_API_KEY":"` + fltAPIKey + `","pad":"`
		path := fltWrite(t, head+strings.Repeat("x", MaxAuthFileSize+1-len(head)-2)+`"}`)
		if fi, _ := os.Stat(path); fi.Size() != MaxAuthFileSize+1 {
			t.Fatalf("bad setup: %d bytes", fi.Size())
		}
		fltEveryReader(t, path, "", ErrInvalidAuthFile)
	})
	t.Run("sparse 8 GiB", func(t *testing.T) {
		path := fltWrite(t, `{"OPENAI_API_KEY":"`+fltAPIKey+`",`)
		if err := os.Truncate(path, 8<<30); err != nil {
			t.Skip("cannot make a sparse file:", err)
		}
		// Counted in bytes read, not time (a loaded machine made the
		// four readers take 7.7 s): beyond the cap is gigabytes.
		before, ok := processReadBytes()
		fltEveryReader(t, path, "", ErrInvalidAuthFile)
		after, _ := processReadBytes()
		if read := after - before; ok && read > 256<<20 {
			t.Errorf("refusing an 8 GiB file read %d MiB: it was read beyond the cap", read>>20)
		}
	})
}

// TestFltHostileAuthFileSymlinks: a symlinked auth.json is followed to a
// regular file (reads work, Update writes the target and keeps the link);
// a link to a directory, to a FIFO or in a loop is an error naming the
// path, and nothing blocks on the FIFO.
func TestFltHostileAuthFileSymlinks(t *testing.T) {
	link := func(t *testing.T, target string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), AuthFileName)
		if err := os.Symlink(target, path); err != nil {
			t.Skip("symlinks unavailable:", err)
		}
		return path
	}
	t.Run("regular file", func(t *testing.T) {
		target := fltWrite(t, `{"auth_mode":"chatgpt","tokens":{"access_token":"`+fltAccess+`","account_id":"acct-flt"}}`)
		path := link(t, target)
		c, err := Load(LoadOptions{CodexHome: filepath.Dir(path), Getenv: fltNoEnv})
		if err != nil || c.Kind != KindChatGPT || c.ChatGPT.AccessToken != fltAccess {
			t.Fatalf("Load through a symlink: %v, %v", c, err)
		}
		tok, err := NewFileTokenSource(path).Token(fltCtx(t))
		if err != nil || tok.AccessToken != fltAccess {
			t.Fatalf("token source through a symlink: %v", err)
		}
		err = NewFileStore(path).Update(fltCtx(t), func(a *AuthFile) error { a.Tokens.AccountID = "acct-flt-2"; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatal("Update replaced the symlink")
		}
		if af, err := NewFileStore(target).Load(); err != nil || af.Tokens.AccountID != "acct-flt-2" {
			t.Fatalf("Update did not write the target: %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		path := link(t, dir)
		fltEveryReader(t, path, "", ErrInvalidAuthFile)
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("the directory behind the link got %d entries", len(entries))
		}
	})
	t.Run("FIFO", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skip("mkfifo:", err)
		}
		path := link(t, fifo)
		done := make(chan struct{})
		go func() {
			defer close(done)
			fltEveryReader(t, path, "", ErrInvalidAuthFile)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			// Unblock a reader stuck opening the FIFO, so the test ends.
			if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				f.Close()
			}
			<-done
			t.Fatal("a reader blocked on a FIFO behind auth.json")
		}
	})
	t.Run("loop", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, AuthFileName)
		other := filepath.Join(dir, "other.json")
		if err := os.Symlink(other, path); err != nil {
			t.Skip("symlinks unavailable:", err)
		}
		if err := os.Symlink(path, other); err != nil {
			t.Fatal(err)
		}
		fltEveryReader(t, path, "", nil)
	})
}

// TestFltHostileAuthFileUnreadable: a file the process may not read is an
// error naming the path that wraps fs.ErrPermission, from every reader.
func TestFltHostileAuthFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: file permissions do not stop root from reading")
	}
	path := fltWrite(t, `{"OPENAI_API_KEY":"`+fltAPIKey+`"}`)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	fltEveryReader(t, path, "", fs.ErrPermission)
}
