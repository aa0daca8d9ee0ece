package credentials

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// codexAuthDotJSON is the Codex CLI's auth.json schema
// (codex-rs/login/src/auth/storage.rs, AuthDotJson and TokenData), spelled
// out independently of AuthFile: what the CLI decodes it keeps, every
// other member it drops when it saves.
type codexAuthDotJSON struct {
	AuthMode     *string          `json:"auth_mode,omitempty"`
	OpenAIAPIKey *string          `json:"OPENAI_API_KEY"`
	Tokens       *codexTokenData  `json:"tokens,omitempty"`
	LastRefresh  *string          `json:"last_refresh,omitempty"`
	AgentID      *json.RawMessage `json:"agent_identity,omitempty"`
	PAT          *string          `json:"personal_access_token,omitempty"`
}

type codexTokenData struct {
	IDToken      string  `json:"id_token"`
	AccessToken  string  `json:"access_token"`
	RefreshToken string  `json:"refresh_token"`
	AccountID    *string `json:"account_id"`
}

// codexCLIWriter saves auth.json the way the Codex CLI's
// FileAuthStorage::save does: no lock, no temp file, no rename, no fsync;
// open with truncate (mode 0600 on create) and write the pretty JSON of
// what it holds, here in two parts with a pause between, so readers can
// catch an empty or half-written file, now and then a slow one. It holds
// the auth it loaded: mostly it re-reads the file and saves it back
// (dropping the members it does not know), and every staleEvery-th save
// it writes the copy holding the refresh token before the newest one it
// has seen: a stale copy, as a CLI saves when it loaded auth.json before
// a rotation.
type codexCLIWriter struct {
	path       string
	staleEvery int
	stop       chan struct{}
	wg         sync.WaitGroup

	saves, staleSaves, slowSaves atomic.Int64

	// Owned by run, then by the test after stopAndWait.
	seen []string                     // distinct refresh tokens, in the order first seen
	docs map[string]*codexAuthDotJSON // the copy held for each
}

// startCodexCLIWriter runs the writer on home/auth.json until the test
// calls stopAndWait (or ends: the cleanup stops it too).
func startCodexCLIWriter(t *testing.T, home string, staleEvery int) *codexCLIWriter {
	t.Helper()
	w := &codexCLIWriter{path: filepath.Join(home, AuthFileName), staleEvery: staleEvery, stop: make(chan struct{}),
		docs: map[string]*codexAuthDotJSON{}}
	w.wg.Add(1)
	go w.run()
	t.Cleanup(w.stopAndWait)
	return w
}

func (w *codexCLIWriter) stopAndWait() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

func (w *codexCLIWriter) run() {
	defer w.wg.Done()
	for i := 0; i < 1_000_000; i++ {
		select {
		case <-w.stop:
			return
		case <-time.After(time.Duration(2+i%5) * time.Millisecond):
		}
		w.load()
		if len(w.seen) == 0 {
			continue
		}
		if w.staleEvery > 0 && i%w.staleEvery == 0 && w.saveStale(i%29 == 0) {
			continue
		}
		w.save(w.docs[w.seen[len(w.seen)-1]], i%29 == 0)
	}
}

// load reads auth.json as the CLI loads it, remembering a copy per
// refresh token it has not seen before.
func (w *codexCLIWriter) load() {
	data, err := os.ReadFile(w.path)
	if err != nil {
		return
	}
	var doc codexAuthDotJSON
	if json.Unmarshal(data, &doc) != nil || doc.Tokens == nil {
		return
	}
	rt := doc.Tokens.RefreshToken
	if _, ok := w.docs[rt]; ok {
		return
	}
	w.seen = append(w.seen, rt)
	w.docs[rt] = &doc
	if len(w.seen) > 8 { // hold a bounded history
		delete(w.docs, w.seen[0])
		w.seen = w.seen[1:]
	}
}

// saveStale saves the copy holding the refresh token before the newest
// one seen, if there is one.
func (w *codexCLIWriter) saveStale(slow bool) bool {
	if len(w.seen) < 2 {
		return false
	}
	w.staleSaves.Add(1)
	w.save(w.docs[w.seen[len(w.seen)-2]], slow)
	return true
}

// save writes doc in place, in two parts; slow pauses 40 ms between them.
func (w *codexCLIWriter) save(doc *codexAuthDotJSON, slow bool) {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	half := len(data) / 2
	_, _ = f.Write(data[:half])
	pause := time.Millisecond
	if slow {
		pause = 40 * time.Millisecond
		w.slowSaves.Add(1)
	}
	time.Sleep(pause)
	_, _ = f.Write(data[half:])
	w.saves.Add(1)
}
