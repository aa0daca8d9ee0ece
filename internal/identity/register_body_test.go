package identity

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The appended task-registration body is byte for byte what the encoder
// makes of taskRegistrationBody, for thread keys that need no escaping
// (appended) and for every kind that does (the encoder's path): quotes,
// backslashes, control characters, U+2028/U+2029, and HTML characters,
// which stay unescaped in both.
func TestTaskRegistrationBodyMatchesEncoder(t *testing.T) {
	ts, sig := "2026-04-23T00:00:00Z", "q83vEjRWeJq8/+=="
	for _, ref := range []string{
		"", "thread-42", "0b9f1c7e-3d1a-4c2e-9a55-1f2e3d4c5b6a", "<a&b>", "ünïcødé ✓",
		`quo"te`, `back\slash`, "tab\there", "nul\x00", "line\u2028sep", "para\u2029sep", "\u00e2\u0080", // the last: é-like bytes, not U+2028
	} {
		want, err := marshalJSON(taskRegistrationBody{Timestamp: ts, Signature: sig, ExternalTaskRef: ref})
		if err != nil {
			t.Fatal(err)
		}
		got, err := taskRegistrationJSON(ts, sig, ref)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("ref %q: body\n%s\nwant\n%s", ref, got, want)
		}
	}
}

// The registration URL is built once per runtime and base: a second
// registration reuses it, another runtime gets its own, and a copy of the
// client with another AuthAPIBase registers there, not at the remembered
// base.
func TestTaskRegistrationURLFollowsBaseAndRuntime(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Host+r.URL.EscapedPath())
		w.Write([]byte(`{"task_id":"t"}`))
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, "other"+r.URL.EscapedPath())
		w.Write([]byte(`{"task_id":"t"}`))
	}))
	defer other.Close()
	key, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{HTTPClient: srv.Client(), AuthAPIBase: srv.URL + "/api/accounts/"}
	for _, rt := range []string{"rt-1", "rt-1", "rt 2"} {
		if _, err := c.RegisterTask(context.Background(), key, rt, "k"); err != nil {
			t.Fatal(err)
		}
	}
	c2 := &Client{HTTPClient: c.HTTPClient, AuthAPIBase: other.URL}
	c2.lastTaskURL.Store(c.lastTaskURL.Load()) // as a copy of c would hold
	if _, err := c2.RegisterTask(context.Background(), key, "rt 2", "k"); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	want := []string{
		host + "/api/accounts/v1/agent/rt-1/task/register",
		host + "/api/accounts/v1/agent/rt-1/task/register",
		host + "/api/accounts/v1/agent/rt%202/task/register",
		"other/v1/agent/rt%202/task/register",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Fatalf("registrations went to\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
}
