package otelauth

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/agentauth/agentauth/transport"
)

// MetricUsedPercent is the gauge of the usage a login's answers last
// reported (transport.Stats.Usage): the used percent of each window of
// each limit, by limit id and window; the highest over the observer's
// transports when several report one limit.
const MetricUsedPercent = "agentauth.usage.used_percent"

// Attribute keys of [MetricUsedPercent].
const (
	AttrUsageLimit  = attribute.Key("agentauth.usage.limit")  // the limit id, "codex" by default
	AttrUsageWindow = attribute.Key("agentauth.usage.window") // "primary" or "secondary"
	AttrLogin       = attribute.Key("agentauth.login")        // set by WithLogin
)

// WithLogin names the login of the transports the observer serves, as
// attribute agentauth.login of the usage gauge, so that one observer per
// login (the members of a pool, say) report apart. The name becomes a
// metric attribute: use a few fixed names, never a token or a user's data.
func WithLogin(name string) Option { return func(c *config) { c.login = name } }

func (o *recorder) usageInstruments(m metric.Meter) {
	_, err := m.Float64ObservableGauge(MetricUsedPercent, metric.WithUnit("%"),
		metric.WithDescription("Used percent of each usage window the login's answers last reported, by limit and window."),
		metric.WithFloat64Callback(o.observeUsage))
	if err != nil {
		otel.Handle(err)
	}
}

func (o *recorder) observeUsage(_ context.Context, obs metric.Float64Observer) error {
	o.mu.Lock()
	o.prune()
	live := make([]*transport.Transport, 0, len(o.transports))
	for _, w := range o.transports {
		if t := w.Value(); t != nil {
			live = append(live, t)
		}
	}
	o.mu.Unlock()
	type point struct{ limit, window string }
	best := map[point]float64{}
	var order []point
	note := func(p point, v float64) {
		if cur, ok := best[p]; !ok || v > cur {
			if !ok {
				order = append(order, p)
			}
			best[p] = v
		}
	}
	for _, t := range live {
		u := t.Stats().Usage
		if u == nil {
			continue
		}
		for _, l := range u.Limits {
			if l.Primary != nil {
				note(point{l.ID, "primary"}, l.Primary.UsedPercent)
			}
			if l.Secondary != nil {
				note(point{l.ID, "secondary"}, l.Secondary.UsedPercent)
			}
		}
	}
	for _, p := range order {
		attrs := []attribute.KeyValue{AttrUsageLimit.String(p.limit), AttrUsageWindow.String(p.window)}
		if o.login != "" {
			attrs = append(attrs, AttrLogin.String(o.login))
		}
		obs.Observe(best[p], metric.WithAttributes(attrs...))
	}
	return nil
}
