package main

import (
	"context"
	"net"
	"net/http"
)

// testDial, when set by a test, replaces the dialer of every connection
// do and demo open, so a test can produce a DNS failure, a reset or a
// refused connection for a public host name without reaching the network.
var testDial func(ctx context.Context, network, addr string) (net.Conn, error)

// networkTransport is the base RoundTripper of do: the default transport,
// or a clone of it that dials with testDial.
func networkTransport() http.RoundTripper {
	if testDial == nil {
		return http.DefaultTransport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = testDial
	return t
}
