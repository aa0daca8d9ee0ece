package transport

import (
	"fmt"
	"io"
)

// Format prints the transport as its credential kind only, under every
// verb. Without it a verb fmt has no rule for (%s, %d, ...) falls back to
// printing the engine behind the pointer field by field, credentials
// included.
func (t *Transport) Format(f fmt.State, _ rune) {
	if t == nil || t.engine == nil {
		io.WriteString(f, "transport.Transport(nil)")
		return
	}
	io.WriteString(f, "transport.Transport{kind: "+t.kind.String()+"}")
}
