package transport

import (
	"io"
	"net/http"
	"strings"
	"unsafe"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/resolver"
)

// send clones req with the credential and routing headers and sends it with
// body. The credential and routing values go into spare slots of the
// array that backs the copied values (each capped to its one slot, so a
// base that appends to one cannot overwrite another): a request costs the
// copy of the request, its header map and one value array, nothing per
// header the transport sets.
func (t *Transport) send(req *http.Request, body io.ReadCloser, a *authorization) (*http.Response, error) {
	r := new(http.Request)
	*r = *req
	r.Body = body
	routing := a.mode != resolver.ModeAPIKey
	extra := 1
	if routing {
		if a.routing.AccountID != "" {
			extra++
		}
		if a.routing.FedRAMP {
			extra++
		}
	}
	h, spare := cloneHeader(req.Header, extra, routing)
	spare[0] = a.header
	h[headers.Authorization] = spare[0:1:1]
	if routing {
		i := 1
		if a.routing.AccountID != "" {
			spare[i] = a.routing.AccountID
			h[headers.ChatGPTAccountID] = spare[i : i+1 : i+1]
			i++
		}
		if a.routing.FedRAMP {
			spare[i] = headers.FedRAMPValue
			h[headers.OpenAIFedRAMP] = spare[i : i+1 : i+1]
		}
	}
	r.Header = h
	t.stats.add(a.mode, uintptr(unsafe.Pointer(r)))
	return t.base.RoundTrip(r)
}

// cloneHeader copies h with room for extra more keys, leaving out every
// spelling of the headers the transport sets (Authorization, and with
// routing also ChatGPT-Account-ID and X-OpenAI-Fedramp): a caller's
// "authorization" in lower case would otherwise travel beside the
// transport's own. Values are copied into one backing array, as
// http.Header.Clone does, which also holds the extra values the caller
// will set: spare has at least extra unused slots of it.
func cloneHeader(h http.Header, extra int, routing bool) (out http.Header, spare []string) {
	n := extra
	for _, vv := range h {
		n += len(vv)
	}
	sv := make([]string, n)
	out = make(http.Header, len(h)+extra)
	for k, vv := range h {
		if ownedHeader(k, routing) {
			continue
		}
		if vv == nil {
			out[k] = nil
			continue
		}
		m := copy(sv, vv)
		out[k] = sv[:m:m]
		sv = sv[m:]
	}
	return out, sv
}

// ownedHeader reports whether k is a spelling of a header the transport
// sets. It switches on the length first: most keys have none of the three
// lengths and cost one comparison, not three case-folding ones.
func ownedHeader(k string, routing bool) bool {
	switch len(k) {
	case len(headers.Authorization):
		return strings.EqualFold(k, headers.Authorization)
	case len(headers.ChatGPTAccountID):
		return routing && strings.EqualFold(k, headers.ChatGPTAccountID)
	case len(headers.OpenAIFedRAMP):
		return routing && strings.EqualFold(k, headers.OpenAIFedRAMP)
	}
	return false
}
