package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Device-code polling, as Codex does it.
const (
	deviceMaxWait = 15 * time.Minute
	// minPollInterval keeps an interval of 0 (which Codex polls with no
	// pause) from becoming a busy loop.
	minPollInterval = 100 * time.Millisecond
	maxPollInterval = time.Minute
)

// slowDownStep is what a slow_down answer adds to the interval (RFC 8628
// §3.5); a variable so tests can shorten it.
var slowDownStep = 5 * time.Second

// deviceCode is the answer of {issuer}/api/accounts/deviceauth/usercode.
type deviceCode struct {
	DeviceAuthID string
	UserCode     string
	Interval     time.Duration
}

// parseDeviceCode decodes the usercode answer: device_auth_id, user_code
// (also spelt usercode) and interval, seconds as a string or a number.
func parseDeviceCode(body []byte) (*deviceCode, error) {
	var v struct {
		DeviceAuthID string          `json:"device_auth_id"`
		UserCode     string          `json:"user_code"`
		UserCodeAlt  string          `json:"usercode"`
		Interval     json.RawMessage `json:"interval"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, errors.New("login: the device code answer is not a JSON object")
	}
	if v.UserCode == "" {
		v.UserCode = v.UserCodeAlt
	}
	if v.DeviceAuthID == "" || v.UserCode == "" {
		return nil, errors.New("login: the device code answer lacks device_auth_id or user_code")
	}
	if !printableToken(v.DeviceAuthID) || !printableToken(v.UserCode) || len(v.UserCode) > 64 {
		return nil, errors.New("login: the device code answer holds an unprintable code")
	}
	secs := uint64(0)
	if len(v.Interval) > 0 && string(v.Interval) != "null" {
		var s string
		raw := string(v.Interval)
		if json.Unmarshal(v.Interval, &s) == nil {
			raw = strings.TrimSpace(s)
		}
		n, err := strconv.ParseUint(raw, 10, 32)
		if err != nil {
			return nil, errors.New("login: the device code answer's interval is not a whole number of seconds")
		}
		secs = n
	}
	d := time.Duration(secs) * time.Second
	d = min(max(d, minPollInterval), maxPollInterval)
	return &deviceCode{DeviceAuthID: v.DeviceAuthID, UserCode: v.UserCode, Interval: d}, nil
}

// deviceGrant is the answer of {issuer}/api/accounts/deviceauth/token once
// the user approved the code.
type deviceGrant struct {
	AuthorizationCode string `json:"authorization_code"`
	CodeChallenge     string `json:"code_challenge"`
	CodeVerifier      string `json:"code_verifier"`
}

func parseDeviceGrant(body []byte) (*deviceGrant, error) {
	var g deviceGrant
	if err := json.Unmarshal(body, &g); err != nil {
		return nil, errors.New("login: the device token answer is not a JSON object")
	}
	if g.AuthorizationCode == "" || g.CodeVerifier == "" {
		return nil, errors.New("login: the device token answer lacks authorization_code or code_verifier")
	}
	return &g, nil
}

// DeviceCode signs in with the device-code flow, as `codex login
// --device-auth` does: it asks {issuer}/api/accounts/deviceauth/usercode
// for a code, prints {issuer}/codex/device and the code to Options.Out,
// polls {issuer}/api/accounts/deviceauth/token at the interval the issuer
// gave (a 403 or 404 answer means "not yet", as in Codex, and so does an
// RFC 8628 authorization_pending error of any status; slow_down adds 5 s)
// for up to 15 minutes, exchanges the authorization code it gets with its
// PKCE verifier at {issuer}/oauth/token, and writes the login to auth.json.
// It returns an error wrapping context.DeadlineExceeded after 15 minutes,
// when the code expires or at ctx's deadline, and one wrapping
// context.Canceled when ctx is cancelled.
func DeviceCode(ctx context.Context, opts Options) error {
	r, err := opts.resolve()
	if err != nil {
		return err
	}
	api := r.issuer + "/api/accounts"
	status, body, err := r.postJSON(ctx, api+"/deviceauth/usercode", map[string]string{"client_id": r.clientID})
	if err != nil {
		return cancelled(ctx, err)
	}
	switch {
	case status == http.StatusNotFound:
		return errors.New("login: device code login is not enabled for this issuer; use the browser login or check the issuer URL")
	case status/100 != 2:
		return fmt.Errorf("login: the device code request failed with HTTP %d: %s", status, errorDetail(body))
	}
	dc, err := parseDeviceCode(body)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "To sign in, open this link in a browser and sign in to your account:\n  %s/codex/device\n\nThen enter this one-time code (it expires in 15 minutes):\n  %s\n\nDevice codes are a common phishing target. Never share this code.\n",
		r.issuer, dc.UserCode)

	grant, err := r.pollDevice(ctx, api+"/deviceauth/token", dc)
	if err != nil {
		return err
	}
	t, err := r.exchangeCode(ctx, grant.AuthorizationCode, grant.CodeVerifier, r.issuer+"/deviceauth/callback")
	if err != nil {
		return cancelled(ctx, fmt.Errorf("login: device code exchange failed: %w", err))
	}
	return r.saveLogin(ctx, t, "")
}

func (r *resolved) pollDevice(ctx context.Context, endpoint string, dc *deviceCode) (*deviceGrant, error) {
	deadline := time.Now().Add(deviceMaxWait)
	interval := dc.Interval
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	// The loop is bounded by the deadline; maxPolls bounds it in count
	// as well should the clock misbehave.
	maxPolls := int(deviceMaxWait/minPollInterval) + 1
	for range maxPolls {
		status, body, err := r.postJSON(ctx, endpoint, map[string]string{"device_auth_id": dc.DeviceAuthID, "user_code": dc.UserCode})
		if err != nil {
			return nil, cancelled(ctx, err)
		}
		if status/100 == 2 {
			return parseDeviceGrant(body)
		}
		code := errorCode(body)
		pending := status == http.StatusForbidden || status == http.StatusNotFound ||
			code == "authorization_pending" || code == "slow_down" // RFC 8628 sends these with 400
		if !pending {
			if code == "expired_token" || code == "deviceauth_expired" {
				return nil, fmt.Errorf("login: the device code expired before it was approved: %w", context.DeadlineExceeded)
			}
			return nil, fmt.Errorf("login: device auth failed with HTTP %d: %s", status, errorDetail(body))
		}
		if code == "slow_down" {
			interval = min(interval+slowDownStep, maxPollInterval)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("login: device auth was not approved within 15 minutes: %w", context.DeadlineExceeded)
		}
		timer.Reset(min(interval, left))
		select {
		case <-ctx.Done():
			return nil, cancelled(ctx, ctx.Err())
		case <-timer.C:
		}
	}
	return nil, fmt.Errorf("login: device auth was not approved within 15 minutes: %w", context.DeadlineExceeded)
}

// cancelled maps the end of ctx to errCancelled or errTimeout.
func cancelled(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("login: the login's deadline passed: %w", context.DeadlineExceeded)
	case ctx.Err() != nil:
		return errCancelled
	}
	return err
}
