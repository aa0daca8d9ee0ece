// Package replay says whether an outgoing request can be sent again and
// gives the body for the second send: the one rule the transport's 401
// recovery and the pool's fail-over share.
package replay

import (
	"io"
	"net/http"
)

// Possible reports whether req can be sent a second time: it has no body,
// or a GetBody that yields a fresh copy.
func Possible(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// Body returns the body for sending req again: none for a request without
// one, else a fresh copy from GetBody. Call it only when Possible(req).
func Body(req *http.Request) (io.ReadCloser, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, nil
	}
	return req.GetBody()
}
