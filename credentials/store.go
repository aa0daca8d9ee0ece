package credentials

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/agentauth/agentauth/identity"
)

// lockRetryDelay is how often a waiting [FileStore.Update] retries the
// file lock; short, because auth.json updates take milliseconds, and it
// bounds how late a cancelled context is noticed.
const lockRetryDelay = 5 * time.Millisecond

// ErrLoginChanged is returned by [FileStore.SaveAgentIdentity] when
// auth.json no longer holds a ChatGPT login of the record's account (the
// user logged out or switched accounts while the identity was being
// provisioned); persisting then would attach the identity to the wrong
// login or resurrect a deleted one.
var ErrLoginChanged = errors.New("credentials: auth.json no longer holds a ChatGPT login for this account")

// IdentityStore persists Agent Identity records provisioned from ChatGPT
// logins (SPEC §3.4), so later processes reuse them instead of registering
// a new agent. Implementations are safe for concurrent use.
type IdentityStore interface {
	// LoadAgentIdentity returns the stored record of login: one whose
	// account_id and chatgpt_user_id both equal login's, or nil, nil when
	// none matches.
	LoadAgentIdentity(ctx context.Context, login Login) (*identity.Record, error)
	// SaveAgentIdentity stores rec under its AccountID and ChatGPTUserID,
	// replacing any record stored for that login.
	SaveAgentIdentity(ctx context.Context, rec *identity.Record) error
}

// Login names the ChatGPT login an agent identity belongs to: the account
// (workspace) and the user within it. Users of one workspace share the
// account id, so both are needed to tell their identities apart.
type Login struct {
	AccountID string
	UserID    string
}

// FileStore reads and updates one auth.json file. Reads need no lock
// because every write replaces the file atomically; writers serialise on
// an exclusive lock on the sibling file path+".lock" (flock(2) on Unix,
// LockFileEx on Windows), which coordinates goroutines, FileStores and
// processes that use agentauth. The Codex CLI does not take that lock; its
// own writes are atomic too, so a concurrent Codex write can be lost but
// the file is never torn. A FileStore is safe for concurrent use;
// create it with [NewFileStore].
//
// When auth.json is a symlink, reads follow it and writes replace the
// target file (the link is kept); a target that is not a regular file is
// refused.
type FileStore struct {
	path string
	sem  chan struct{} // serialises this store's writers before the file lock

	// rename replaces the destination with the fully written temp file;
	// tests swap it to simulate a crash between write and rename.
	rename func(oldpath, newpath string) error
}

// NewFileStore returns a store for the auth.json at path. Nothing is read
// or created until it is used.
func NewFileStore(path string) *FileStore {
	return &FileStore{path: path, sem: make(chan struct{}, 1), rename: os.Rename}
}

// Path returns the auth.json path the store was created with.
func (s *FileStore) Path() string { return s.path }

// Load reads and parses the file. A missing file yields an empty
// [AuthFile] and a nil error; other problems are *[LoadError].
func (s *FileStore) Load() (*AuthFile, error) {
	af, _, err := readAuthFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &AuthFile{}, nil
	}
	return af, err
}

// Update applies fn to the current content of the file under an exclusive
// lock and writes the result atomically. It creates the directory (mode
// 0700) when missing, takes the lock (waiting until ctx ends), re-reads
// the file under the lock (missing → empty AuthFile), calls fn, and, if
// fn returns nil and the encoding changed, writes a temp file (mode 0600)
// in the same directory, fsyncs it, renames it over auth.json and fsyncs
// the directory. Members AuthFile does not model are preserved. When fn
// returns an error nothing is written and that error is returned as is;
// a file that cannot be parsed is not overwritten.
func (s *FileStore) Update(ctx context.Context, fn func(*AuthFile) error) error {
	if s.sem == nil {
		return errors.New("credentials: FileStore must be created with NewFileStore")
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("credentials: waiting for %s: %w", s.path, ctx.Err())
	}
	defer func() { <-s.sem }()

	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return &LoadError{Path: s.path, Err: err}
	}
	lock := flock.New(s.path + ".lock")
	ok, err := lock.TryLockContext(ctx, lockRetryDelay)
	if err != nil || !ok {
		if err == nil {
			err = errors.New("lock not acquired")
		}
		return fmt.Errorf("credentials: locking %s: %w", s.path, err)
	}
	defer lock.Unlock()

	target := s.path
	if resolved, err := filepath.EvalSymlinks(s.path); err == nil {
		target = resolved
	}
	var old []byte
	af := &AuthFile{}
	data, _, err := readAuthBytes(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return withPath(err, s.path)
	default:
		if af, err = ParseAuthFile(data); err != nil {
			return withPath(err, s.path)
		}
		old = data
	}
	if err := fn(af); err != nil {
		return err
	}
	out, err := af.Marshal()
	if err != nil {
		return err
	}
	if old != nil && bytes.Equal(out, old) {
		return nil // nothing changed: keep the mtime, so readers need not reload
	}
	return s.writeAtomic(target, out)
}

func (s *FileStore) writeAtomic(target string, data []byte) (err error) {
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return &LoadError{Path: s.path, Err: err}
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already uses 0600; Chmod makes that explicit and
	// independent of the platform default.
	if err = tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return &LoadError{Path: s.path, Err: err}
	}
	if _, err = tmp.Write(data); err != nil {
		return &LoadError{Path: s.path, Err: err}
	}
	if err = tmp.Sync(); err != nil {
		return &LoadError{Path: s.path, Err: err}
	}
	if err = tmp.Close(); err != nil {
		return &LoadError{Path: s.path, Err: err}
	}
	if err = s.rename(tmp.Name(), target); err != nil {
		return &LoadError{Path: s.path, Err: err}
	}
	// The rename is durable only once the directory entry is.
	return syncDir(dir)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync there
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("credentials: syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("credentials: syncing %s: %w", dir, err)
	}
	return nil
}

// LoadAgentIdentity returns the file's agent_identity_record when its
// account_id equals accountID, after validating it; nil, nil otherwise
// (also when the file is missing).
func (s *FileStore) LoadAgentIdentity(ctx context.Context, login Login) (*identity.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	af, err := s.Load()
	if err != nil {
		return nil, err
	}
	rec := af.AgentIdentityRecord
	if rec == nil || rec.AccountID != login.AccountID || rec.ChatGPTUserID != login.UserID {
		return nil, nil
	}
	cp := *rec
	if err := validateRecord(&cp); err != nil {
		return nil, &LoadError{Path: s.path, Field: keyAgentIdentityRecord, Err: err}
	}
	return &cp, nil
}

// SaveAgentIdentity validates rec and stores it as agent_identity_record,
// but only while auth.json still holds a ChatGPT login (tokens) whose
// account id equals rec.AccountID; otherwise it writes nothing and returns
// [ErrLoginChanged]. The check runs under the file lock, so a logout or
// account switch that happened during provisioning is never overwritten.
func (s *FileStore) SaveAgentIdentity(ctx context.Context, rec *identity.Record) error {
	if rec == nil {
		return errors.New("credentials: SaveAgentIdentity: nil record")
	}
	cp := *rec
	if err := validateRecord(&cp); err != nil {
		return fmt.Errorf("credentials: SaveAgentIdentity: %w", err)
	}
	return s.Update(ctx, func(af *AuthFile) error {
		if af.Tokens == nil {
			return ErrLoginChanged
		}
		login, err := chatGPTLogin(af)
		if err != nil {
			return withPath(err, s.path)
		}
		if login.AccountID != cp.AccountID {
			return ErrLoginChanged
		}
		af.AgentIdentityRecord = &cp
		return nil
	})
}

// MemoryStore is an [IdentityStore] kept in memory: for tests and for
// identities that should live only as long as the process. The zero value
// is ready to use.
type MemoryStore struct {
	mu   sync.Mutex
	recs map[Login]identity.Record
}

// NewMemoryStore returns an empty [MemoryStore]; new(MemoryStore) is
// equivalent.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// LoadAgentIdentity returns a copy of the record stored for login, or
// nil, nil.
func (m *MemoryStore) LoadAgentIdentity(ctx context.Context, login Login) (*identity.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[login]
	if !ok {
		return nil, nil
	}
	return &rec, nil
}

// SaveAgentIdentity validates rec and stores a copy under rec.AccountID.
func (m *MemoryStore) SaveAgentIdentity(ctx context.Context, rec *identity.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rec == nil {
		return errors.New("credentials: SaveAgentIdentity: nil record")
	}
	if err := validateRecord(rec); err != nil {
		return fmt.Errorf("credentials: SaveAgentIdentity: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = make(map[Login]identity.Record)
	}
	m.recs[Login{AccountID: rec.AccountID, UserID: rec.ChatGPTUserID}] = *rec
	return nil
}

var (
	_ IdentityStore = (*FileStore)(nil)
	_ IdentityStore = (*MemoryStore)(nil)
)
