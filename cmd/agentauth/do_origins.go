// do's first-party origins: where the credential may go, and the URLs that name them.

package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/agentauth/agentauth/internal/identity"
)

// doDefaultOrigins are the first-party origins of every do run: the
// library's default allow-list (the ChatGPT backend and the API).
var doDefaultOrigins = []string{"https://chatgpt.com", "https://api.openai.com"}

// planOrigins sets the first-party origins (the defaults, a loopback URL's
// own origin, the AuthAPI and each --allow-origin) and refuses a URL
// outside them, so a typo cannot send a login to a stranger.
func (r *doRequest) planOrigins(set map[string]bool, f doFlags) error {
	r.origins = slices.Clone(doDefaultOrigins)
	if identity.IsLoopbackBase(r.target.String()) {
		// A local server (agentauth serve, a test server) is where both
		// the request and its registrations belong: registering at the
		// production AuthAPI would send a login there for a local test.
		// The environment override still wins, as in the library.
		r.chatgptBase = originOf(r.target)
		r.addOrigin(r.target)
	}
	if set["authapi"] {
		u, err := parseHTTPURL("--authapi", f.authAPI, false)
		if err != nil {
			return err
		}
		r.authAPI = strings.TrimRight(u.String(), "/")
		r.addOrigin(u)
	} else {
		r.authAPI = identity.ResolveBaseURLs(nil, r.chatgptBase).AuthAPI
		u, err := parseHTTPURL("$"+identity.EnvCodexAuthAPIBase+" (or $"+identity.EnvAuthAPIBase+")", r.authAPI, false)
		if err != nil {
			return err
		}
		r.addOrigin(u)
	}
	for _, o := range f.origins {
		u, err := parseHTTPURL("--allow-origin", o, false)
		if err != nil {
			return err
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("--allow-origin %q must be scheme://host[:port] without a path", truncate(o))
		}
		r.addOrigin(u)
	}
	if target := originOf(r.target); !slices.Contains(r.origins, target) {
		return fmt.Errorf("%s is not a first-party origin, so no credential would be sent there; credentials go only to %s; add --allow-origin %s to send them there", target, strings.Join(r.origins, ", "), target)
	}
	return nil
}

// addOrigin makes u's origin first-party; a plain http one (parseHTTPURL
// admits it only for loopback) needs AllowInsecureHTTP.
func (r *doRequest) addOrigin(u *url.URL) {
	if o := originOf(u); !slices.Contains(r.origins, o) {
		r.origins = append(r.origins, o)
	}
	r.insecure = r.insecure || u.Scheme == "http"
}

// parseHTTPURL accepts an absolute http(s) URL without user info. Plain
// http is accepted only for loopback hosts: a credential may be sent there.
func parseHTTPURL(what, raw string, allowQuery bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, fmt.Errorf("%s %q is not an absolute http(s) URL", what, truncate(raw))
	case u.User != nil:
		return nil, fmt.Errorf("%s must not carry user info", what)
	case !allowQuery && (u.RawQuery != "" || u.Fragment != ""):
		return nil, fmt.Errorf("%s must be a base URL without query or fragment", what)
	case u.Scheme == "http" && !identity.IsLoopbackBase(raw):
		return nil, fmt.Errorf("%s: plain http is allowed only for loopback hosts; use https", what)
	}
	return u, nil
}

// originOf returns "scheme://host[:port]" of u.
func originOf(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + u.Host
}
