// Package transport_test holds black-box tests of the whole agentauth stack:
// the transport against the identitytest reference server and real HTTP
// servers on loopback. It has no non-test code.
package transport_test
