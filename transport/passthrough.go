package transport

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
)

// maxLoggedOrigins bounds how many distinct origins one Transport
// remembers having logged as outside its allow-list.
const maxLoggedOrigins = 64

// maxLoggedOriginLen bounds the bytes one remembered origin may hold.
const maxLoggedOriginLen = 256

// passThroughLog says, at debug level and once per origin, that a request
// left without the transport's credential because its origin is not
// first-party. The common surprise it explains is a client pointed at a
// test server while ChatGPTBaseURL stays at its default: the server answers
// a plain 401 and nothing else says why. It remembers at most
// maxLoggedOrigins origins; after that, new origins are not logged (the
// last logged record says so). Its zero value is ready to use.
type passThroughLog struct {
	seen sync.Map // origin string → struct{}
	n    atomic.Int32
}

// note logs req's origin if the logger wants debug records and the origin
// was not logged before. It is called only on the pass-through branch of a
// Transport holding a credential; with debug disabled it costs one
// Enabled call and nothing else.
func (p *passThroughLog) note(logger *slog.Logger, req *http.Request) {
	ctx := req.Context()
	if !logger.Enabled(ctx, slog.LevelDebug) || req.URL == nil {
		return
	}
	origin := req.URL.Scheme + "://" + req.URL.Host
	if len(origin) > maxLoggedOriginLen {
		origin = origin[:maxLoggedOriginLen]
	}
	if _, ok := p.seen.Load(origin); ok || p.n.Load() >= maxLoggedOrigins {
		return
	}
	if _, loaded := p.seen.LoadOrStore(origin, struct{}{}); loaded {
		return
	}
	n := p.n.Add(1)
	if n > maxLoggedOrigins {
		// Lost a race for the last slot: keep the set bounded.
		p.seen.Delete(origin)
		return
	}
	p.log(ctx, logger, origin, n == maxLoggedOrigins)
}

func (p *passThroughLog) log(ctx context.Context, logger *slog.Logger, origin string, last bool) {
	attrs := []any{
		"origin", origin,
		"hint", "set config.ChatGPTBaseURL, AllowedOrigins or ExtraOrigins to send credentials to this origin",
	}
	if last {
		attrs = append(attrs, "further_origins_logged", false)
	}
	logger.DebugContext(ctx, "agentauth: origin is not first-party; request sent without credentials", attrs...)
}
