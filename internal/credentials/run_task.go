package credentials

import (
	"context"
	"errors"
	"io/fs"
)

// LoadRunTask returns the run task stored with the agent identity record of
// runtimeID: the record's task_id, which the Codex CLI registers once per
// identity and reuses across processes for requests that belong to no
// thread. It returns "" when the file holds no record of that runtime or
// no task_id (also when the file is missing).
func (s *FileStore) LoadRunTask(ctx context.Context, runtimeID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	af, _, err := readAuthFileRetrying(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if af.AgentIdentityRecord == nil || af.AgentIdentityRecord.AgentRuntimeID != runtimeID || runtimeID == "" {
		return "", nil
	}
	return af.AgentIdentityTaskID, nil
}

// SaveRunTask stores taskID as the run task (task_id) of the agent identity
// record of runtimeID, under the file lock on a fresh read, so that the
// Codex CLI and later processes reuse it. replaces is the task the server
// refused, or "" when none was stored. Nothing is written when the file no
// longer holds a record of runtimeID (the identity was replaced
// meanwhile), and a task_id other than replaces that another process
// stored meanwhile is kept: both tasks are valid, and the file's stays the
// one everybody reuses.
func (s *FileStore) SaveRunTask(ctx context.Context, runtimeID, taskID, replaces string) error {
	if runtimeID == "" || taskID == "" {
		return errors.New("credentials: SaveRunTask: empty runtime or task id")
	}
	return s.Update(ctx, func(af *AuthFile) error {
		rec := af.AgentIdentityRecord
		if rec == nil || rec.AgentRuntimeID != runtimeID {
			return nil
		}
		if cur := af.AgentIdentityTaskID; cur != "" && cur != replaces {
			return nil
		}
		af.AgentIdentityTaskID = taskID
		return nil
	})
}
