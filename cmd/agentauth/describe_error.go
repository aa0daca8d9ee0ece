package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// The describers in this file turn any error into one line for the person
// who ran the command. They must survive every shape an error can take: a
// *net.OpError without Addr or Err, a *url.Error without Err, a typed nil
// pointer wrapped by fmt.Errorf, an x509 error whose certificate is nil.
// Each field is checked before it is used, and errText calls a foreign
// Error method under recover, since several standard ones dereference
// fields they assume are set.

// errUnknown is what a describer says for a nil error or a cause it cannot
// print.
const errUnknown = "unknown error"

// errText is err.Error(), or errUnknown for a nil error (typed or not) or
// an Error method that panics.
func errText(err error) (s string) {
	if isNil(err) {
		return errUnknown
	}
	defer func() {
		if recover() != nil {
			s = fmt.Sprintf("%T", err)
		}
	}()
	return oneLine(err.Error())
}

// isNil reports whether err is nil or a nil pointer in an interface.
func isNil(err error) bool {
	if err == nil {
		return true
	}
	switch e := err.(type) {
	case *net.OpError:
		return e == nil
	case *net.DNSError:
		return e == nil
	case *url.Error:
		return e == nil
	case *transport.Error:
		return e == nil
	case *identity.RegistrationError:
		return e == nil
	case *credentials.RefreshError:
		return e == nil
	case *credentials.LoadError:
		return e == nil
	case *tls.CertificateVerificationError:
		return e == nil
	case *os.SyscallError:
		return e == nil
	}
	return false
}

// describeDoError words a failed request for the person who ran do (or
// demo): what the transport was doing (refreshing the ChatGPT login,
// provisioning, registering the thread's task or the process task, and
// where) and the root cause (a status and the server's words, or the
// network error), instead of the chain of package prefixes and internal
// keys.
func describeDoError(err error, authAPI string) (msg string) {
	defer func() {
		if recover() != nil {
			msg = "the request failed: " + errText(err)
		}
	}()
	if isNil(err) {
		return "the request failed: " + errUnknown
	}
	var te *transport.Error
	if !errors.As(err, &te) || te == nil {
		if what, ok := describeRefresh(err); ok {
			return what
		}
		var ue *url.Error
		if errors.As(err, &ue) && ue != nil {
			return fmt.Sprintf("sending %s %s failed: %s", strings.ToUpper(ue.Op), ue.URL, rootCause(ue.Err))
		}
		return rootCause(err)
	}
	if what, ok := describeRefresh(te.Err); ok {
		return what
	}
	var what string
	switch {
	case errors.Is(err, transport.ErrProvisioning):
		what = "provisioning an Agent Identity from the ChatGPT login at " + authAPI
	case errors.Is(err, transport.ErrRegistration) && te.Mode == resolver.ModeThreadTask:
		what = "registering the thread's task at " + authAPI
	case errors.Is(err, transport.ErrRegistration):
		what = "registering the process task (the task of requests without a thread key) at " + authAPI
	case errors.Is(err, transport.ErrInvalidThreadKey):
		what = "checking the thread key"
	default:
		what = "authenticating the request"
	}
	msg = what + " failed: " + rootCause(te.Err)
	if te.Temporary() {
		msg += " (temporary; a later run may succeed)"
	}
	return msg
}

// describeRefresh words a failed ChatGPT token refresh: it names the
// token endpoint and the variable that moves it, since a local test
// server that forgot it sends the refresh to production.
func describeRefresh(err error) (string, bool) {
	var re *credentials.RefreshError
	if !errors.As(err, &re) || re == nil {
		return "", false
	}
	endpoint := tokenEndpoint()
	if re.Permanent {
		return fmt.Sprintf("token refresh at %s: %s", endpoint, strings.TrimPrefix(errText(re), "credentials: ")), true
	}
	cause := "the token endpoint answered " + httpStatus(re.Status)
	if re.Status == 0 {
		cause = rootCause(re.Err)
	} else if re.Reason != "" {
		cause += " (" + re.Reason + ")"
	}
	return fmt.Sprintf("token refresh at %s failed: %s; $%s names another token endpoint, such as agentauth serve's /oauth/token (temporary; a later run may succeed)",
		endpoint, cause, credentials.EnvRefreshTokenURL), true
}

// tokenEndpoint is where a ChatGPT login is refreshed, as the library
// resolves it from the environment.
func tokenEndpoint() string {
	if u := strings.TrimSpace(os.Getenv(credentials.EnvRefreshTokenURL)); u != "" {
		return u + " (from $" + credentials.EnvRefreshTokenURL + ")"
	}
	return credentials.DefaultTokenURL
}

func httpStatus(code int) string {
	return strings.TrimSpace(fmt.Sprintf("%d %s", code, http.StatusText(code)))
}

// rootCause describes the innermost useful error: a registration's status
// and body, a network operation's error, or a timeout.
func rootCause(err error) (s string) {
	defer func() {
		if recover() != nil {
			s = errText(err)
		}
	}()
	if isNil(err) {
		return errUnknown
	}
	var reg *identity.RegistrationError
	if errors.As(err, &reg) && reg != nil && reg.StatusCode != 0 {
		s := "the server answered " + httpStatus(reg.StatusCode)
		if reg.Body != "" {
			s += ": " + reg.Body
		}
		return s
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	if s, ok := networkCause(err); ok {
		return s
	}
	if reg != nil && !isNil(reg.Err) {
		return errText(reg.Err)
	}
	return errText(err)
}

// networkCause names a failure below HTTP: name resolution, a proxy, TLS,
// a refused or reset connection, or a connection closed before an answer.
func networkCause(err error) (s string, ok bool) {
	defer func() {
		// errors.Is and errors.As call the Is, As and Unwrap methods of
		// what err wraps; a typed nil pointer among them panics there.
		if recover() != nil {
			s, ok = "", false
		}
	}()
	var (
		dns      *net.DNSError
		op       *net.OpError
		rh       tls.RecordHeaderError
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	if errors.As(err, &op) && op != nil && op.Op == "proxyconnect" {
		return "connecting to the proxy ($HTTPS_PROXY / $HTTP_PROXY) failed: " + opCause(op), true
	}
	switch {
	case errors.As(err, &dns) && dns != nil:
		host := dns.Name
		if host == "" {
			host = "the server's host name"
		}
		why := dns.Err
		if dns.IsNotFound || why == "" {
			why = "no such host"
		}
		return "cannot resolve " + host + ": " + why + " (offline, or a typo in the host?)", true
	case errors.As(err, &rh):
		return "TLS handshake failed: the server did not answer with TLS (is it plain http? use http:// for a loopback server)", true
	case errors.As(err, &verify) && verify != nil:
		return "TLS certificate not accepted: " + certCause(verify.Err), true
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return "TLS certificate not accepted: " + certCause(err), true
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset by the server or a middlebox", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is the server running?)", true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the server closed the connection before the answer was complete", true
	case errors.As(err, &op) && op != nil:
		return opCause(op), true
	}
	return "", false
}

// opCause describes a *net.OpError whose Addr, Net or Err may be unset.
func opCause(op *net.OpError) string {
	s := op.Op
	if s == "" {
		s = "network operation"
	}
	if op.Addr != nil {
		if a := op.Addr.String(); a != "" {
			s += " " + a
		}
	}
	return s + ": " + errText(op.Err)
}

// certCause says why a certificate was refused without calling Error
// methods that dereference a nil certificate.
func certCause(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknown):
		return "signed by an unknown authority (a TLS-intercepting proxy? set $SSL_CERT_FILE to its CA)"
	case errors.As(err, &hostname):
		if hostname.Host != "" {
			return "it is not valid for " + hostname.Host
		}
		return "it is not valid for the host name"
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "expired or not yet valid"
		}
		return "invalid"
	}
	return errText(err)
}
