// Package pool is one [http.RoundTripper] over several logins' transports
// ([Member]s, built by [CodexHomes] or by hand) that sends each request to
// the least used login, keeps a thread (transport.WithThread) on the login
// that served it first so its task stays under one agent identity, moves
// work off a login whose 429 reported usage_limit_reached or
// usage_not_included until the reset it gave (sending the request once
// more to another login when its body can be replayed; the thread moves
// once and its new login registers it afresh), and drops a login that
// failed for good; replicas of a fleet share what they learn through
// [Shared]. When no member can serve, RoundTrip returns [ErrUnavailable].
package pool
