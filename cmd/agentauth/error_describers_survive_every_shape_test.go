package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// leafErrors are the causes a request, a registration or a refresh can
// end in: every network failure shape, and errors whose fields are unset.
var leafErrors = []struct {
	name string
	err  error
}{
	{"nil", nil},
	{"dns not found", &net.DNSError{Err: "no such host", Name: "chatgpt.com", IsNotFound: true}},
	{"dns empty", &net.DNSError{}},
	{"dns in dial op", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "auth.openai.com"}}},
	{"op nil everything", &net.OpError{}},
	{"op reset nil addr", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}},
	{"op refused", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, Err: syscall.ECONNREFUSED}},
	{"op nil addr value", &net.OpError{Op: "dial", Addr: (*net.TCPAddr)(nil), Err: errors.New("x")}},
	{"proxyconnect", &net.OpError{Op: "proxyconnect", Net: "tcp", Err: syscall.ECONNREFUSED}},
	{"proxyconnect nil err", &net.OpError{Op: "proxyconnect"}},
	{"proxy auth", errors.New("proxyconnect tcp: Proxy Authentication Required")},
	{"tls record header", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}},
	{"tls verification nil", &tls.CertificateVerificationError{}},
	{"tls verification unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}},
	{"x509 hostname nil cert", x509.HostnameError{Host: "chatgpt.com"}},
	{"x509 invalid expired", x509.CertificateInvalidError{Reason: x509.Expired}},
	{"x509 invalid other", x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}},
	{"syscall reset", syscall.ECONNRESET},
	{"eof", io.EOF},
	{"unexpected eof", io.ErrUnexpectedEOF},
	{"url nil err", &url.Error{Op: "Get", URL: "https://chatgpt.com/"}},
	{"url nil everything", &url.Error{}},
	{"typed nil op", (*net.OpError)(nil)},
	{"typed nil dns", (*net.DNSError)(nil)},
	{"typed nil url", (*url.Error)(nil)},
	{"typed nil transport", (*transport.Error)(nil)},
	{"typed nil registration", (*identity.RegistrationError)(nil)},
	{"typed nil refresh", (*credentials.RefreshError)(nil)},
	{"typed nil load", (*credentials.LoadError)(nil)},
	{"typed nil verification", (*tls.CertificateVerificationError)(nil)},
	{"empty registration", &identity.RegistrationError{}},
	{"registration 503", &identity.RegistrationError{Op: identity.OpTaskRegistration, StatusCode: 503, Body: "busy"}},
	{"registration network", &identity.RegistrationError{Op: "agent registration", Err: &net.OpError{Op: "dial"}}},
	{"empty refresh", &credentials.RefreshError{}},
	{"refresh permanent", &credentials.RefreshError{Permanent: true, Reason: credentials.ReasonRefreshTokenExpired}},
	{"refresh dns", &credentials.RefreshError{Err: &net.OpError{Op: "dial", Err: &net.DNSError{Name: "auth.openai.com", IsNotFound: true}}}},
	{"empty load", &credentials.LoadError{}},
	{"load invalid", &credentials.LoadError{Path: "/nonexistent/auth.json", Err: credentials.ErrInvalidAuthFile}},
	{"no credential", transport.ErrNoCredential},
	{"deadline", context.DeadlineExceeded},
	{"canceled", context.Canceled},
	{"backoff empty", &taskcache.BackoffError{}},
	{"attempt empty", &taskcache.AttemptError{}},
	{"stale identity", transport.ErrStaleIdentity},
	{"panicking Error", panicky{}},
}

// panicky is an error whose Error method panics, as x509.HostnameError's
// does with a nil certificate.
type panicky struct{}

func (panicky) Error() string { panic("Error called") }

// wrappers put an error in every container the describers look into.
var wrappers = []struct {
	name string
	wrap func(error) error
}{
	{"bare", func(e error) error { return e }},
	{"fmt %w", func(e error) error { return fmt.Errorf("ctx: %w", e) }},
	{"join", func(e error) error { return errors.Join(errors.New("a"), e) }},
	{"url.Error", func(e error) error { return &url.Error{Op: "Post", URL: "https://chatgpt.com/backend-api/x", Err: e} }},
	{"op", func(e error) error { return &net.OpError{Op: "read", Err: e} }},
	{"transport credential", func(e error) error { return &transport.Error{Mode: resolver.ModeBearer, Err: e} }},
	{"transport process task", func(e error) error { return &transport.Error{Mode: resolver.ModeProcessTask, Err: e} }},
	{"registration", func(e error) error { return &identity.RegistrationError{Op: identity.OpTaskRegistration, Err: e} }},
	{"refresh", func(e error) error { return &credentials.RefreshError{Err: e} }},
	{"load", func(e error) error { return &credentials.LoadError{Path: "/nonexistent/auth.json", Err: e} }},
	{"verification", func(e error) error { return &tls.CertificateVerificationError{Err: e} }},
	{"backoff", func(e error) error { return &taskcache.BackoffError{Err: e} }},
	{"stale", func(e error) error { return fmt.Errorf("%w: rt: %w", transport.ErrStaleIdentity, e) }},
}

// describers are every function of the package that words an error.
var describers = []struct {
	name string
	fn   func(error) string
}{
	{"describeDoError", func(e error) string { return describeDoError(e, "https://chatgpt.com/backend-api") }},
	{"rootCause", rootCause},
	{"describeLoadError", describeLoadError},
	{"demoErrorKindOf", demoErrorKindOf},
	{"errText", errText},
	{"networkCause", func(e error) string { s, _ := networkCause(e); return s }},
}

// checkDescription runs every describer on err and fails on a panic, an
// empty result for a non-empty-describing function, or a multi-line one.
func checkDescription(t *testing.T, label string, err error) {
	t.Helper()
	for _, d := range describers {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s(%s) panicked: %v", d.name, label, r)
				}
			}()
			s := d.fn(err)
			if d.name != "networkCause" && strings.TrimSpace(s) == "" {
				t.Errorf("%s(%s) = %q, want a description", d.name, label, s)
			}
			if strings.Contains(s, "\n") {
				t.Errorf("%s(%s) = %q spans lines", d.name, label, s)
			}
		}()
	}
}

// Every leaf in every one- and two-level wrapping: no describer panics or
// says nothing.
func TestErrorDescribersSurviveEveryShape(t *testing.T) {
	n := 0
	for _, l := range leafErrors {
		for _, w1 := range wrappers {
			for _, w2 := range wrappers {
				checkDescription(t, w2.name+"("+w1.name+"("+l.name+"))", w2.wrap(w1.wrap(l.err)))
				n++
			}
		}
	}
	if n < 5000 {
		t.Errorf("only %d shapes tried", n)
	}
}

// The words for the failures a newcomer meets offline.
func TestErrorDescribersWordNetworkFailures(t *testing.T) {
	dnsDial := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "chatgpt.com", IsNotFound: true}}
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"dns in a url.Error", &url.Error{Op: "Get", URL: "https://chatgpt.com/", Err: dnsDial}, []string{"sending GET https://chatgpt.com/ failed", "cannot resolve chatgpt.com: no such host"}},
		{"reset with nil addr", &url.Error{Op: "Post", URL: "https://chatgpt.com/x", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}, []string{"connection was reset"}},
		{"record header", &url.Error{Op: "Get", URL: "https://127.0.0.1:1/", Err: tls.RecordHeaderError{}}, []string{"did not answer with TLS"}},
		{"unknown authority", &url.Error{Op: "Get", URL: "https://chatgpt.com/", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, []string{"TLS certificate not accepted", "unknown authority"}},
		{"hostname nil cert", &url.Error{Op: "Get", URL: "https://chatgpt.com/", Err: x509.HostnameError{Host: "chatgpt.com"}}, []string{"not valid for chatgpt.com"}},
		{"proxy", &url.Error{Op: "Get", URL: "https://chatgpt.com/", Err: &net.OpError{Op: "proxyconnect", Net: "tcp", Err: syscall.ECONNREFUSED}}, []string{"connecting to the proxy", "refused"}},
		{"eof", &url.Error{Op: "Get", URL: "https://chatgpt.com/", Err: io.EOF}, []string{"closed the connection before the answer was complete"}},
		{"unexpected eof", &url.Error{Op: "Get", URL: "https://chatgpt.com/", Err: io.ErrUnexpectedEOF}, []string{"closed the connection before the answer was complete"}},
		{"url nil err", &url.Error{Op: "Get", URL: "https://chatgpt.com/"}, []string{"sending GET https://chatgpt.com/ failed: unknown error"}},
		{"nil", nil, []string{"unknown error"}},
		{"refresh dns", &url.Error{Op: "Get", URL: "https://chatgpt.com/", Err: &transport.Error{Mode: resolver.ModeBearer, Err: &credentials.RefreshError{Err: dnsDial}}},
			[]string{"token refresh at " + credentials.DefaultTokenURL + " failed", "cannot resolve chatgpt.com", "$" + credentials.EnvRefreshTokenURL}},
		{"refresh 500", &credentials.RefreshError{Status: 500}, []string{"token refresh", "answered 500 Internal Server Error", credentials.EnvRefreshTokenURL}},
		{"refresh expired", &credentials.RefreshError{Permanent: true, Reason: credentials.ReasonRefreshTokenExpired}, []string{"token refresh at", "refresh token has expired", "codex login"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(credentials.EnvRefreshTokenURL, "")
			got := describeDoError(tc.err, "https://chatgpt.com/backend-api")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("describeDoError = %q, want it to contain %q", got, w)
				}
			}
		})
	}
	if got := demoErrorKindOf(&url.Error{Err: dnsDial}); got != "failed: network (dns)" {
		t.Errorf("demoErrorKindOf(dns) = %q", got)
	}
	if got := demoErrorKindOf(&url.Error{Err: &net.OpError{}}); got != "failed: network" {
		t.Errorf("demoErrorKindOf(empty op) = %q", got)
	}
}

// FuzzErrorDescribers builds an error from the input (a leaf and a chain
// of wrappers chosen by its bytes) and checks every describer on it. The
// seeds run in every go test; go test -fuzz explores further.
func FuzzErrorDescribers(f *testing.F) {
	for i := range leafErrors {
		f.Add([]byte{byte(i), 3, 5, 0})
		f.Add([]byte{byte(i), 6, 4, 9, 3})
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || len(b) > 16 {
			return
		}
		err := leafErrors[int(b[0])%len(leafErrors)].err
		for _, c := range b[1:] {
			err = wrappers[int(c)%len(wrappers)].wrap(err)
		}
		checkDescription(t, fmt.Sprintf("%x", b), err)
	})
}
