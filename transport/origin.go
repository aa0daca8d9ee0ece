package transport

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// origin is a scheme, lower-case host and explicit port.
type origin struct {
	scheme, host, port string
}

func (o origin) String() string {
	return o.scheme + "://" + net.JoinHostPort(o.host, o.port)
}

func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

// parseOrigin accepts "scheme://host[:port]" with an optional path (a base
// URL), which it ignores.
func parseOrigin(s string) (origin, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" || u.User != nil {
		return origin{}, fmt.Errorf("transport: %q is not an origin (scheme://host[:port])", s)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return origin{}, fmt.Errorf("transport: origin %q: scheme must be https or http", s)
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	return origin{scheme: scheme, host: strings.ToLower(u.Hostname()), port: port}, nil
}

// originSet is the first-party allow-list. It is small (a handful of
// entries), so a linear scan without allocation beats a map lookup that
// would need a normalised key string per request.
type originSet []origin

// allows reports whether u is first-party. It never allocates.
func (s originSet) allows(u *url.URL) bool {
	if u == nil {
		return false
	}
	host := u.Host
	port := ""
	// Split host and port without url.URL.Hostname/Port's allocations for
	// the common "host" and "host:port" forms.
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host, port = host[:i], host[i+1:]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	for _, o := range s {
		if !strings.EqualFold(u.Scheme, o.scheme) || !strings.EqualFold(host, o.host) {
			continue
		}
		p := port
		if p == "" {
			p = defaultPort(o.scheme)
		}
		if p == o.port {
			return true
		}
	}
	return false
}

// isLoopback reports whether host names the local machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
