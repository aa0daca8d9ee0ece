package transport

import (
	"context"
	"path/filepath"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/processtask"
	"github.com/agentauth/agentauth/internal/provisionlock"
)

// runTaskStore keeps an identity's run task (its process task) where the
// Codex CLI keeps its own: the task_id of the auth.json agent_identity
// record. [credentials.FileStore] is one.
type runTaskStore interface {
	LoadRunTask(ctx context.Context, runtimeID string) (string, error)
	SaveRunTask(ctx context.Context, runtimeID, taskID, replaces string) error
}

// runTaskPersistence is one runtime's run task in a runTaskStore.
type runTaskPersistence struct {
	store     runTaskStore
	runtimeID string
}

func (p runTaskPersistence) Load(ctx context.Context) (string, error) {
	return p.store.LoadRunTask(ctx, p.runtimeID)
}

func (p runTaskPersistence) Save(ctx context.Context, taskID, replaces string) error {
	return p.store.SaveRunTask(ctx, p.runtimeID, taskID, replaces)
}

// Lock takes the provisioning lock of the auth.json, when the store is
// one, so that processes starting together register one run task.
func (p runTaskPersistence) Lock(ctx context.Context) (func(), error) {
	af, ok := p.store.(authFile)
	if !ok {
		return func() {}, nil
	}
	return provisionlock.Acquire(ctx, af.Path())
}

var (
	_ processtask.Persistence = runTaskPersistence{}
	_ processtask.Locker      = runTaskPersistence{}
)

// runTasks returns where the run tasks of this transport's identities are
// kept: the IdentityStore when it can keep them (an auth.json), else the
// auth.json a user-given Agent Identity record was loaded from; nil when
// there is no such place (a JWT, a fleet store, a record given in code).
func (t *Transport) runTasks() runTaskStore {
	if rs, ok := t.s.IdentityStore.(runTaskStore); ok && rs != nil {
		return rs
	}
	c := t.s.Credentials
	if c != nil && c.Kind == credentials.KindAgentIdentity && c.AgentIdentityJWT == "" &&
		filepath.Base(c.Source) == credentials.AuthFileName {
		return credentials.NewFileStore(c.Source)
	}
	return nil
}
