package identitytest

// EchoHeader is set on every answer of a protected resource (value
// "identitytest"), so a client can tell the reference server's echo from
// another server's JSON and compare echoes only where they mean what
// [Echo] says. agentauth demo --server relies on it.
const EchoHeader = "X-Identitytest-Echo"
