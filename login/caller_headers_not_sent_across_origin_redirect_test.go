package login

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// CallerHeaders must not hand the caller's Authorization to another origin
// a first-party server redirects to: the http.Client calls RoundTrip again
// for the redirect, so the headers must be kept to the first request's
// origin.
func TestCallerHeadersAreNotSentAcrossAnOriginRedirect(t *testing.T) {
	var mu sync.Mutex
	var foreignAuth string
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		foreignAuth = r.Header.Get("Authorization")
		mu.Unlock()
	}))
	defer foreign.Close()
	var sameAuth string
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			mu.Lock()
			sameAuth = r.Header.Get("Authorization")
			mu.Unlock()
		case "/to-same":
			http.Redirect(w, r, "/same", http.StatusFound)
		default:
			http.Redirect(w, r, foreign.URL+"/steal", http.StatusFound)
		}
	}))
	defer first.Close()
	rt, err := CallerHeaders(nil, http.Header{"Authorization": {"Bearer caller-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: rt}
	defer c.CloseIdleConnections()
	for _, path := range []string{"/to-foreign", "/to-same"} {
		resp, err := c.Get(first.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	mu.Lock()
	defer mu.Unlock()
	if foreignAuth != "" {
		t.Error("the caller's Authorization followed a redirect to another origin")
	}
	if sameAuth != "Bearer caller-secret" {
		t.Errorf("a same-origin redirect lost the caller's headers: %q", sameAuth)
	}
}
