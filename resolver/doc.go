// Package resolver names how a request is authenticated: the [Mode] the
// transport picks for it from the credential, the use_agent_identity flag
// and the request's context (a thread key set with transport.WithThread, or
// none). A thread-tagged request on an Agent Identity is signed on its
// thread's task; one without a thread key on the hidden process task; a
// ChatGPT login with the flag off is Bearer; an API key is sent as it is;
// anything else, or a foreign origin, passes through. Stats count requests
// by Mode and errors report the Mode that failed.
package resolver
