package redisstore

import (
	"context"

	"github.com/agentauth/agentauth/transport"
)

// ResetLogin deletes the fleet's refresh state of a ChatGPT login: its
// token set, its refresh lock and the marks of its lock holders. The next
// replica to load the login seeds the fleet with its own token set (its
// auth.json), as on a fresh Redis. Use it when the fleet's set is dead
// (the login was revoked or logged out and refreshing fails for good)
// and the replicas' new auth.json should win whatever its age; a newer
// login (codex login again) replaces the fleet's set on its own.
//
// login and tokens name the login as [Store.Coordinators] does: tokens
// (the auth.json token set) matter only for a login without a user id,
// whose fleet set is told apart by the tokens' subject or, failing that,
// by the set itself; nil resets the login as [Store.RefreshCoordinator]
// names it. The login's agent identity is kept: it belongs to the user,
// not to one login session. A replica still running keeps its token in
// memory; restart it, or let its next refresh see the reset. No sealing
// key is needed. The error is an *[Error] with Op "reset".
func (s *Store) ResetLogin(ctx context.Context, login transport.Login, tokens *transport.TokenSet) error {
	var keys []string
	marks := []string{""}
	if m := loginMark(login, tokens); m != "" {
		marks = append(marks, m)
	}
	for _, mark := range marks {
		k := s.markedLoginKeys(login, mark)
		keys = append(keys, k.tokens, k.tokensLock, k.tokensHolder, k.tokensGrace)
	}
	opCtx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	// One DEL per login: the keys of a login share a hash tag, so this is
	// one slot in a Redis Cluster.
	for i := 0; i < len(keys); i += 4 {
		if err := s.client.Del(opCtx, keys[i:i+4]...).Err(); err != nil {
			if ctx.Err() == nil {
				s.failed(err)
			}
			return &Error{Op: "reset", Err: err}
		}
	}
	s.healthy()
	return nil
}
