// Package resolver is the vocabulary shared by the transport, its callers
// and shared task stores: how a request is authenticated ([Mode]), how the
// per-thread task cache is tuned ([CacheOptions], set through
// transport.Config.ThreadCache), the errors a registration failure surfaces
// as ([AttemptError], [BackoffError]) and the seam through which
// several processes share thread tasks ([TaskStore], [StoreKey]).
//
// The machinery behind that vocabulary (the cache itself, the assertion
// signer and the process task) is internal to the module: callers configure
// it through the transport and never drive it directly.
package resolver
