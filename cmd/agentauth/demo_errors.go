// demo's errors and warnings: the first message of each kind, with counts.

package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"

	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// demoErrorKind is one kind of failure: its count and the first message.
type demoErrorKind struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
	First string `json:"first"`
}

// demoErrors keeps the first message of each kind of failure and warning,
// redacted and bounded, with counts. Safe for concurrent use.
type demoErrors struct {
	secrets  []string
	mu       sync.Mutex
	errs     []demoErrorKind
	warnings []demoErrorKind
}

func (d *demoErrors) add(kind, msg string) { d.record(&d.errs, kind, msg) }

func (d *demoErrors) warn(msg string) { d.record(&d.warnings, msg, msg) }

func (d *demoErrors) record(list *[]demoErrorKind, kind, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range *list {
		if (*list)[i].Kind == kind {
			(*list)[i].Count++
			return
		}
	}
	if len(*list) >= demoMaxErrorKinds {
		kind = "other"
		for i := range *list {
			if (*list)[i].Kind == kind {
				(*list)[i].Count++
				return
			}
		}
	}
	msg = oneLine(scrub(msg, d.secrets))
	if len(msg) > demoMaxErrorText {
		msg = msg[:demoMaxErrorText] + "..."
	}
	*list = append(*list, demoErrorKind{Kind: kind, Count: 1, First: msg})
}

func (d *demoErrors) snapshot() (errs, warnings []demoErrorKind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.errs), slices.Clone(d.warnings)
}

// demoErrorKindOf names the kind of a request error for grouping: the
// transport's error class, else a network or other failure.
func demoErrorKindOf(err error) (kind string) {
	defer func() {
		if recover() != nil {
			kind = "failed: other"
		}
	}()
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case isNil(err):
		return "failed: other"
	case errors.Is(err, transport.ErrProvisioning):
		return "failed: agent provisioning"
	case errors.Is(err, transport.ErrRegistration):
		var te *transport.Error
		if errors.As(err, &te) && te.Mode == resolver.ModeThreadTask {
			return "failed: thread-task registration"
		}
		return "failed: process-task registration"
	case errors.Is(err, transport.ErrCredential):
		return "failed: credential"
	case errors.Is(err, context.DeadlineExceeded):
		return "failed: timeout"
	case errors.As(err, &dns) && dns != nil:
		return "failed: network (dns)"
	case errors.As(err, &op) && op != nil && op.Op != "":
		return "failed: network (" + op.Op + ")"
	case errors.As(err, &op) && op != nil:
		return "failed: network"
	}
	return "failed: other"
}

// demoWarnHandler returns the slog.Handler that collects the transport's
// warn-level records, with their error attribute, into errs.
func demoWarnHandler(errs *demoErrors) slog.Handler {
	return &logHandler{
		enabled: func(l slog.Level) bool { return l >= slog.LevelWarn },
		emit: func(r slog.Record, attrs []slog.Attr) error {
			msg := r.Message
			eachAttr(r, attrs, func(a slog.Attr) {
				if a.Key == "error" {
					msg += ": " + a.Value.Resolve().String()
				}
			})
			errs.warn(msg)
			return nil
		},
	}
}
