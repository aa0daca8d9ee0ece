// Package redisstore lets the replicas of a service share, through Redis
// (or Valkey), the agentauth state that would otherwise be duplicated per
// process: the task of each conversation thread, so a fleet registers one
// task per thread instead of one per replica; the agent identity of a
// ChatGPT login, so the fleet provisions one and every replica signs with
// it; and the refresh of a ChatGPT login, so replicas spend its single-use
// refresh token one at a time and none overwrites a newer rotation.
//
// How each is shared:
//
//   - Thread tasks ([Store] is a transport.TaskStore for
//     transport.Fleet.TaskStore): a conversation thread served by a whole
//     fleet costs one task registration instead of one per replica. A
//     replica that misses its in-process cache looks the thread up in
//     Redis; on a fleet-wide miss the first replica takes a short lock (SET
//     NX PX with a random token), registers, publishes the task id and
//     releases the lock with a compare-and-delete script, while the others
//     wait for the published id instead of registering. A lock whose holder
//     died expires after Options.LockTimeout and another replica takes
//     over.
//   - The agent identity of a ChatGPT login ([Store] is a
//     transport.IdentityStore for transport.Fleet.IdentityStore): with
//     use_agent_identity on, the fleet provisions one identity per login and
//     every replica signs with it. Provisioning is single-flight
//     fleet-wide: the first replica to miss reserves the login and
//     registers, the others wait for its identity; the first identity
//     stored wins.
//   - The refresh of a ChatGPT login ([Coordinator] is a
//     transport.RefreshCoordinator): refresh tokens are single-use, so
//     replicas refresh one at a time under a fleet-wide lock per login, the
//     current token set is published for the others, and a Lua
//     compare-and-swap keeps a stale replica from overwriting a newer
//     rotation.
//
// transport.New takes all three in transport.Options.Fleet: TaskStore and
// IdentityStore set to the Store, and RefreshCoordinator set to
// [Store.Coordinators], which seeds the fleet with the replica's auth.json
// (see Example_agentauth); the transport's Close stops a Coordinator's
// background publish.
//
// Secrets (tokens, private keys) are sealed with AES-256-GCM under an
// operator's key ([Sealer], [SealingKeyEnv]) and bound to their key name;
// without a key they are refused ([ErrNoSealingKey]). The first key seals
// and every listed key opens, so a key is rotated in two phases across a
// rolling deploy: first list the new key second ("OLD,NEW") on every
// replica, which still seals with OLD and can already open NEW; once every
// replica runs that list, promote it ("NEW,OLD"); drop OLD once the values
// sealed with it are rewritten. Putting the new key first in one step
// breaks the replicas still on "OLD": they cannot open what NEW sealed.
// Key names are SHA-256 hashes of the runtime id and thread key or of the
// account and user ids, never a credential or an id in the clear.
//
// The store prefers availability: when Redis is unreachable or slower than
// Options.OpTimeout, a replica registers thread tasks locally, and refresh
// coordination fails fast with a temporary error so a replica keeps using
// its still-valid token (a replica started during the outage uses its
// seed's); only with CoordinatorOptions.OutageBound set, and once its
// token has expired, does it refresh on its own. A rotation that could not
// reach Redis is published in the background as soon as Redis answers
// (until [Coordinator.Close]); a lock that lapsed meanwhile is taken by the
// next replica only after a short grace for that publish. Token sets are
// ranked by their issue time, which only moves forward: a seed replaces
// only an older set (a new login replaces a revoked one;
// [Store.ResetLogin] and the agentauth-redis command reset a login).
// Outages are counted in Stats and logged once, until the next successful
// Redis call ends them.
//
// Only commands of Redis 6.2 and earlier are used (GET, SET with NX/PX,
// DEL, EXISTS, PEXPIRE, HSET, HGET, HMGET, EVALSHA/EVAL), so Valkey works
// unchanged; keys of one thread or one login share a Redis Cluster hash
// tag.
package redisstore
