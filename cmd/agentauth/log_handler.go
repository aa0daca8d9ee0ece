// The one slog.Handler the commands give the transport: do prints its
// records on stderr, demo collects its warnings for the summary.

package main

import (
	"context"
	"log/slog"
	"slices"
)

// logHandler passes each enabled slog record, with the attributes
// WithAttrs added, to emit. Groups are flattened (WithGroup is a no-op):
// the transport logs flat attributes.
type logHandler struct {
	enabled func(slog.Level) bool
	emit    func(r slog.Record, attrs []slog.Attr) error
	attrs   []slog.Attr
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return h.enabled(l) }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error { return h.emit(r, h.attrs) }

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clip(h.attrs), as...)
	return &c
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

// eachAttr calls f on attrs and then on r's own attributes, in that order.
func eachAttr(r slog.Record, attrs []slog.Attr, f func(slog.Attr)) {
	for _, a := range attrs {
		f(a)
	}
	r.Attrs(func(a slog.Attr) bool { f(a); return true })
}
