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

	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/identityreplace"
)

// lockRetryDelay is how often a waiting [FileStore.Update] retries the
// file lock; short, because auth.json updates take milliseconds, and it
// bounds how late a cancelled context is noticed.
const lockRetryDelay = 5 * time.Millisecond

// ErrLoginChanged is returned by [FileStore.SaveAgentIdentity] when
// auth.json no longer holds a ChatGPT login of the record's account and
// user (the user logged out, switched accounts, or another user of the
// same workspace logged in while the identity was being provisioned);
// persisting then would hand the identity, private key included, to the
// wrong login or resurrect a deleted one.
var ErrLoginChanged = errors.New("credentials: auth.json no longer holds the ChatGPT login (account and user) of this agent identity")

// ErrIdentityExists is what an [IdentityStore] whose first stored identity
// wins (a store shared by a fleet) wraps when SaveAgentIdentity refuses a
// record because another identity is already stored for its login. A
// provisioning that gets it loads the stored identity and signs with that
// one, so every process of the fleet uses one runtime per login.
var ErrIdentityExists = errors.New("credentials: another agent identity is already stored for this login")

// IdentityStore persists Agent Identity records provisioned from ChatGPT
// logins (agent registration), so later processes reuse them instead of registering
// a new agent. Implementations are safe for concurrent use.
type IdentityStore interface {
	// LoadAgentIdentity returns the stored record of login: one whose
	// account_id and chatgpt_user_id both equal login's, or nil, nil when
	// none matches.
	LoadAgentIdentity(ctx context.Context, login Login) (*identity.Record, error)
	// SaveAgentIdentity stores rec under its AccountID and ChatGPTUserID,
	// replacing any record stored for that login, or, for a store where
	// the first identity wins ([FileStore] and a fleet store), refusing
	// with an error wrapping [ErrIdentityExists].
	SaveAgentIdentity(ctx context.Context, rec *identity.Record) error
}

// Login names the ChatGPT login an agent identity belongs to: the account
// (workspace) and the user within it. Users of one workspace share the
// account id, so both are needed to tell their identities apart.
type Login struct {
	AccountID string
	UserID    string
}

// FileStore reads and updates one auth.json file, sharing it with the
// Codex CLI. Writers take agentauth's own lock, an exclusive lock on
// [AuthStorageLockFileName] in the file's directory (flock(2) on Unix,
// LockFileEx on Windows), which serialises them with goroutines, other
// FileStores and other processes using agentauth. The Codex CLI takes no
// lock: it truncates auth.json and writes it in place whenever it saves.
// So reads take no lock either, and a read that catches a partly written
// file is retried; every agentauth write replaces the file atomically
// (temp file, fsync, rename), re-reads it first, changes only its own
// members and redoes the update when the file changed before the rename,
// so a rotation Codex wrote meanwhile is not rolled back. A
// FileStore is safe for concurrent use; create it with [NewFileStore].
//
// When auth.json is a symlink, reads follow it and writes replace the
// file the link points to, also when that file does not exist yet (the
// link is kept); a target that is not a regular file is refused.
type FileStore struct {
	path string
	sem  chan struct{} // serialises this store's writers before the file lock

	// rename replaces the destination with the fully written temp file;
	// tests swap it to simulate a crash between write and rename.
	rename func(oldpath, newpath string) error
	// writeFault, when set, is asked before every write of the file; an
	// error it returns fails the write as the disk would (tests simulate
	// a full disk with it).
	writeFault func() error
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

// Update applies fn to the current content of the file under agentauth's
// lock ([AuthStorageLockFileName]) and writes the result atomically. It creates the
// directory (mode 0700) when missing, takes the lock (waiting until ctx
// ends), re-reads the file under the lock (missing → empty AuthFile), calls fn, and, if
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

	release, err := lockAuthStorage(ctx, s.path)
	if err != nil {
		return err
	}
	defer release()
	return s.updateLocked(fn)
}

// updateLocked is Update's read-modify-write; the caller holds the auth
// storage lock.
func (s *FileStore) updateLocked(fn func(*AuthFile) error) error {
	// A writer that takes no lock (the Codex CLI) can rewrite the file
	// between our read and our rename. The file is compared with what was
	// read just before the rename, and the update redone on a change, so
	// such a rotation is not rolled back (the window shrinks to a read and
	// a rename).
	var err error
	for range maxUpdateAttempts {
		if err = s.updateOnce(fn); !errors.Is(err, errFileChanged) {
			return err
		}
	}
	return fmt.Errorf("credentials: %s kept changing during the update: %w", s.path, ErrTokenSetChanged)
}

// maxUpdateAttempts bounds how often an update is redone because the file
// changed under it.
const maxUpdateAttempts = 8

var errFileChanged = errors.New("credentials: auth.json changed during the update")

func (s *FileStore) updateOnce(fn func(*AuthFile) error) error {
	target := writeTarget(s.path)
	var old []byte
	af := &AuthFile{}
	data, _, err := readAuthBytes(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return withPath(err, s.path)
	default:
		if af, err = ParseAuthFile(data); err != nil {
			// Under the lock only a writer that takes none (the Codex
			// CLI, which rewrites in place) can be mid-write; read again.
			if a2, _, err2 := readAuthFileRetrying(target); err2 == nil {
				af, err = a2, nil
				data, _, _ = readAuthBytes(target)
			}
		}
		if err != nil {
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
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return &LoadError{Path: s.path, Err: err}
	}
	return s.writeAtomic(target, out, func() bool {
		cur, _, err := readAuthBytes(target)
		if old == nil {
			return errors.Is(err, fs.ErrNotExist)
		}
		return err == nil && bytes.Equal(cur, old)
	})
}

// writeAtomic writes data to a temp file next to target, syncs it, and
// renames it over target if unchanged (checked last) still reports true;
// otherwise it removes the temp file and returns errFileChanged.
func (s *FileStore) writeAtomic(target string, data []byte, unchanged func() bool) (err error) {
	if s.writeFault != nil {
		if err := s.writeFault(); err != nil {
			return &LoadError{Path: s.path, Err: err}
		}
	}
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
	if unchanged != nil && !unchanged() {
		os.Remove(tmp.Name())
		return errFileChanged
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

// LoadAgentIdentity returns the file's record agent_identity (or the
// legacy agent_identity_record) when its account_id and chatgpt_user_id
// equal login's, after validating it; nil, nil otherwise (also when the
// file is missing).
func (s *FileStore) LoadAgentIdentity(ctx context.Context, login Login) (*identity.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	af, _, err := readAuthFileRetrying(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec := af.AgentIdentityRecord
	if rec == nil || rec.AccountID != login.AccountID || rec.ChatGPTUserID != login.UserID {
		return nil, nil
	}
	cp := *rec
	if err := validateRecord(&cp); err != nil {
		return nil, &LoadError{Path: s.path, Field: keyAgentIdentity, Err: err}
	}
	return &cp, nil
}

// SaveAgentIdentity validates rec and stores it in agent_identity in the
// record form current Codex reads (so the CLI reuses the runtime), but only
// while auth.json still holds a ChatGPT login (tokens) whose account id
// equals rec.AccountID and whose user (chatgpt_user_id of its id token,
// else of its access token) equals rec.ChatGPTUserID; otherwise it writes
// nothing and returns [ErrLoginChanged]. A user that cannot be read from
// the file's tokens is not compared: the file then names no other user.
//
// The first identity stored for a login wins, across FileStores and
// processes: when the file already holds a valid record of the same
// account and user with another runtime, nothing is written and the error
// wraps [ErrIdentityExists]; the caller then loads that record and signs
// with it, so one login has one identity on the machine. Only the
// replacement of a runtime the AuthAPI no longer knows (named through the
// save's context by the transport) overwrites it. Saving the runtime that
// is already stored is not an error.
//
// The record is written with the email and plan_type of the file's id
// token when rec has none, as Codex writes them. Every check runs under
// agentauth's lock on a fresh read, so a logout, an account or user switch
// or a token rotation that happened during provisioning is never
// overwritten. A legacy agent_identity_record is migrated by the write; an
// Agent Identity JWT in agent_identity is left in place (the record then
// goes to the legacy member). A task_id stored with a record of the same
// runtime is kept.
func (s *FileStore) SaveAgentIdentity(ctx context.Context, rec *identity.Record) error {
	if rec == nil {
		return errors.New("credentials: SaveAgentIdentity: nil record")
	}
	cp := *rec
	if err := validateRecord(&cp); err != nil {
		return fmt.Errorf("credentials: SaveAgentIdentity: %w", err)
	}
	replaces := identityreplace.From(ctx)
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
		if login.UserID != "" && cp.ChatGPTUserID != "" && login.UserID != cp.ChatGPTUserID {
			return ErrLoginChanged
		}
		if prev := af.AgentIdentityRecord; prev != nil && prev.AgentRuntimeID != cp.AgentRuntimeID &&
			prev.AgentRuntimeID != replaces && prev.AccountID == cp.AccountID &&
			prev.ChatGPTUserID == cp.ChatGPTUserID && validateRecord(prev) == nil {
			return fmt.Errorf("%w (stored runtime %q, not %q)", ErrIdentityExists, prev.AgentRuntimeID, cp.AgentRuntimeID)
		}
		if cp.Email == "" || cp.PlanType == "" {
			email, plan := idTokenProfile(af.Tokens.IDToken)
			if cp.Email == "" {
				cp.Email = email
			}
			if cp.PlanType == "" {
				cp.PlanType = plan
			}
		}
		if prev := af.AgentIdentityRecord; prev == nil || prev.AgentRuntimeID != cp.AgentRuntimeID {
			af.AgentIdentityTaskID = ""
			af.recordExtra = nil
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
