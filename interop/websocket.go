package interop

import (
	"net/http"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/agentauth/agentauth/identitytest"
)

// WebSocketEcho is an [identitytest.Options] WebSocket hook built on
// github.com/coder/websocket. The reference server calls it only for an
// upgrade request it has already authenticated, so everything it serves is
// behind a verified handshake. It accepts the connection, sends echo (what
// the server verified: mode, runtime, task, external ref, routing, path; never
// the credential) as the first message, a JSON text message, and then sends
// every message it receives back unchanged, with the same message type,
// until the client closes the connection or the server closes (the
// request's context ends), whichever comes first. Messages are limited to
// coder/websocket's default read limit (32 KiB).
func WebSocketEcho(w http.ResponseWriter, r *http.Request, echo identitytest.Echo) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has already answered the client with the reason.
	}
	defer c.CloseNow()
	ctx := r.Context()
	if err := wsjson.Write(ctx, c, echo); err != nil {
		return
	}
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			// A close frame, a broken connection or the server closing:
			// in every case the exchange is over.
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}
