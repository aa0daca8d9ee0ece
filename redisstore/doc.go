// Package redisstore shares thread tasks across the replicas of a service
// through Redis, so that a conversation thread served by a whole fleet costs
// one task registration instead of one per replica: it implements
// resolver.TaskStore for transport.Config.TaskStore. A replica that misses
// its in-process cache looks the thread up in Redis; on a fleet-wide miss
// the first replica takes a short lock (SET NX PX with a random token),
// registers, publishes the task id and releases the lock with a
// compare-and-delete script, while the others wait for the published id
// instead of registering. A lock whose holder died expires after
// Options.LockTimeout and another replica takes over. Redis only ever holds
// task ids and lock tokens under keys derived from a SHA-256 hash of the
// runtime id and thread key, never a credential. The store prefers
// availability over de-duplication: when Redis is unreachable or slower than
// Options.OpTimeout, a replica registers locally and keeps serving, counts
// it in Stats and logs the outage once, until the next successful Redis
// operation ends it.
package redisstore
