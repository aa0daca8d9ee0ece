package transport

import (
	"net/url"
	"testing"
)

func TestOriginSet(t *testing.T) {
	var set originSet
	for _, raw := range []string{"https://chatgpt.com/backend-api", "https://API.openai.com", "http://127.0.0.1:8787", "https://[::1]:9443"} {
		o, err := parseOrigin(raw)
		if err != nil {
			t.Fatal(err)
		}
		set = append(set, o)
	}
	cases := map[string]bool{
		"https://chatgpt.com/backend-api/x":  true,
		"https://ChatGPT.com:443/":           true,
		"https://chatgpt.com:8443/":          false,
		"http://chatgpt.com/":                false,
		"https://evil.com/chatgpt.com":       false,
		"https://chatgpt.com.evil.com/":      false,
		"https://api.openai.com/v1/x":        true,
		"http://127.0.0.1:8787/v1/responses": true,
		"http://127.0.0.1:8788/":             false,
		"http://127.0.0.1/":                  false,
		"https://[::1]:9443/x":               true,
		"https://[::1]/x":                    false,
	}
	for raw, want := range cases {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := set.allows(u); got != want {
			t.Errorf("allows(%s) = %v, want %v", raw, got, want)
		}
	}
	if set.allows(nil) {
		t.Error("nil URL allowed")
	}
	for _, bad := range []string{"chatgpt.com", "ftp://x", "https://user:pw@x.com", ""} {
		if _, err := parseOrigin(bad); err == nil {
			t.Errorf("parseOrigin(%q) accepted", bad)
		}
	}
}

func TestOriginAllowsDoesNotAllocate(t *testing.T) {
	o, _ := parseOrigin("https://chatgpt.com")
	set := originSet{o}
	u, _ := url.Parse("https://chatgpt.com:443/backend-api/x")
	if n := testing.AllocsPerRun(100, func() { set.allows(u) }); n != 0 {
		t.Errorf("allows allocates %v times", n)
	}
}
