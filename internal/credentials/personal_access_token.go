package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/useragent"
)

// PersonalAccessTokenWhoamiPath is appended to the AuthAPI base to learn
// which ChatGPT account a personal access token belongs to.
const PersonalAccessTokenWhoamiPath = "/v1/user-auth-credential/whoami"

// PersonalAccessTokenTimeout bounds one [HydratePersonalAccessToken] call
// when the caller's context allows longer: loading credentials must not
// hang on an AuthAPI that accepts the connection and never answers.
const PersonalAccessTokenTimeout = 10 * time.Second

// maxWhoamiResponse bounds the whoami body read: the real answer is a few
// hundred bytes.
const maxWhoamiResponse = 64 << 10

// PersonalAccessTokenMetadata is what the AuthAPI says about a personal
// access token: the ChatGPT account and user it acts for. A personal access
// token carries no readable claims, so this is the only source of the
// routing headers it must be sent with. It holds no secret.
type PersonalAccessTokenMetadata struct {
	// Email is the user's address; "" when the AuthAPI answers null.
	Email string
	// UserID is chatgpt_user_id.
	UserID string
	// AccountID is chatgpt_account_id, sent as ChatGPT-Account-ID.
	AccountID string
	// PlanType is chatgpt_plan_type as the AuthAPI spells it.
	PlanType string
	// FedRAMP is chatgpt_account_is_fedramp; a FedRAMP account's requests
	// carry X-OpenAI-Fedramp.
	FedRAMP bool
}

// Routing returns the routing headers of the token's account.
func (m PersonalAccessTokenMetadata) Routing() headers.Routing {
	return headers.Routing{AccountID: m.AccountID, FedRAMP: m.FedRAMP}
}

// Login returns the token's account and user.
func (m PersonalAccessTokenMetadata) Login() Login {
	return Login{AccountID: m.AccountID, UserID: m.UserID}
}

// PersonalAccessTokenError is a failed [HydratePersonalAccessToken]. It
// never holds the token or the response body: only the status, a short
// error code the AuthAPI gave, and a cause without either.
type PersonalAccessTokenError struct {
	// Status is the HTTP status of the whoami answer; 0 when there was no
	// answer (a network error, a timeout, a refused base URL).
	Status int
	// Code is the error code of a non-2xx answer (error.code, a string
	// error, or a top-level code), lower-cased and kept only when it looks
	// like one (at most 64 letters and underscores); "" otherwise.
	Code string
	// Err is the cause, or nil for a plain non-2xx answer.
	Err error

	invalid bool // the request was never sent: bad token or base
}

// Error describes the failure without the token.
func (e *PersonalAccessTokenError) Error() string {
	var b strings.Builder
	b.WriteString("credentials: personal access token metadata request failed")
	if e.Status != 0 {
		b.WriteString(" (HTTP " + strconv.Itoa(e.Status))
		if e.Code != "" {
			b.WriteString(", " + strconv.Quote(e.Code))
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": " + truncate(e.Err.Error(), maxQuotedError))
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		b.WriteString("; the token is invalid, expired or revoked: create a new one")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *PersonalAccessTokenError) Unwrap() error { return e.Err }

// Temporary reports whether the same request may succeed later: no answer
// at all, 408, 429 or a 5xx. A rejected token (401, 403), another answer
// or a malformed body is permanent.
func (e *PersonalAccessTokenError) Temporary() bool {
	switch {
	case e.Status == 0:
		return !e.invalid
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		return true
	}
	return e.Status >= 500
}

// HydratePersonalAccessToken asks the AuthAPI at authAPIBase (trailing "/"
// ignored) which ChatGPT account the personal access token belongs to, as
// Codex does when it loads one: GET authAPIBase +
// [PersonalAccessTokenWhoamiPath] with "Authorization: Bearer <token>".
// The answer must be a 2xx JSON object with chatgpt_user_id,
// chatgpt_account_id and chatgpt_plan_type strings, a
// chatgpt_account_is_fedramp boolean and an email string or null; unknown
// members are ignored. A non-empty account id is required, since requests
// cannot be routed without one.
//
// client nil means http.DefaultClient. Redirects are not followed (a
// redirect could carry the token to another scheme or host), and the base
// must be https, or http on a loopback host, with no userinfo, query or
// fragment. The call is bounded by ctx and by
// [PersonalAccessTokenTimeout]. It logs nothing; every error is a
// *[PersonalAccessTokenError] that never contains the token.
func HydratePersonalAccessToken(ctx context.Context, client *http.Client, authAPIBase, token string) (*PersonalAccessTokenMetadata, error) {
	if token == "" {
		return nil, &PersonalAccessTokenError{Err: errors.New("the token is empty"), invalid: true}
	}
	if err := headers.ValidateValue(headers.Authorization, token); err != nil {
		return nil, &PersonalAccessTokenError{Err: err, invalid: true}
	}
	base := strings.TrimRight(strings.TrimSpace(authAPIBase), "/")
	if err := checkWhoamiBase(base); err != nil {
		return nil, &PersonalAccessTokenError{Err: err, invalid: true}
	}
	if client == nil {
		client = http.DefaultClient
	}
	noRedirect := *client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	ctx, cancel := context.WithTimeout(ctx, PersonalAccessTokenTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+PersonalAccessTokenWhoamiPath, nil)
	if err != nil {
		return nil, &PersonalAccessTokenError{Err: errors.New("invalid AuthAPI base URL"), invalid: true}
	}
	req.Header.Set(headers.Authorization, headers.SchemeBearer+" "+token)
	req.Header.Set("Accept", "application/json")
	useragent.Set(req.Header, useragent.Originator(useragent.FromContext(ctx), os.Getenv))
	resp, err := noRedirect.Do(req)
	if err != nil {
		return nil, &PersonalAccessTokenError{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxWhoamiResponse+1))
	if err != nil {
		return nil, &PersonalAccessTokenError{Status: resp.StatusCode, Err: errors.New("reading the answer failed")}
	}
	if resp.StatusCode/100 != 2 {
		return nil, &PersonalAccessTokenError{Status: resp.StatusCode, Code: safeCode(strings.ToLower(refreshErrorCode(data)))}
	}
	if len(data) > maxWhoamiResponse {
		return nil, &PersonalAccessTokenError{Status: resp.StatusCode, Err: fmt.Errorf("the answer is larger than %d bytes", maxWhoamiResponse)}
	}
	md, err := decodeWhoami(data)
	if err != nil {
		return nil, &PersonalAccessTokenError{Status: resp.StatusCode, Err: err}
	}
	return md, nil
}

// decodeWhoami decodes a whoami answer. Its errors name the member at
// fault, never a value.
func decodeWhoami(data []byte) (*PersonalAccessTokenMetadata, error) {
	var w struct {
		Email     *string `json:"email"`
		UserID    *string `json:"chatgpt_user_id"`
		AccountID *string `json:"chatgpt_account_id"`
		PlanType  *string `json:"chatgpt_plan_type"`
		FedRAMP   *bool   `json:"chatgpt_account_is_fedramp"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		// json's messages can quote the offending input; name the kind only.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, fmt.Errorf("the answer's %s has the wrong type", te.Field)
		}
		return nil, errors.New("the answer is not a JSON object")
	}
	for _, m := range []struct {
		name    string
		missing bool
	}{
		{"chatgpt_user_id", w.UserID == nil},
		{"chatgpt_account_id", w.AccountID == nil || *w.AccountID == ""},
		{"chatgpt_plan_type", w.PlanType == nil},
		{"chatgpt_account_is_fedramp", w.FedRAMP == nil},
	} {
		if m.missing {
			return nil, fmt.Errorf("the answer has no %s", m.name)
		}
	}
	md := &PersonalAccessTokenMetadata{UserID: *w.UserID, AccountID: *w.AccountID, PlanType: *w.PlanType, FedRAMP: *w.FedRAMP}
	if w.Email != nil {
		md.Email = *w.Email
	}
	if err := md.Routing().Validate(); err != nil {
		return nil, errors.New("the answer's chatgpt_account_id cannot be sent as a header")
	}
	return md, nil
}

// checkWhoamiBase refuses a base the token must not travel to.
func checkWhoamiBase(base string) error {
	u, err := url.Parse(base)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return errors.New("the AuthAPI base is not an absolute URL")
	case u.User != nil:
		return errors.New("the AuthAPI base must not contain userinfo")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(base, "#"):
		return errors.New("the AuthAPI base must not have a query or fragment")
	case strings.EqualFold(u.Scheme, "https"):
		return nil
	case strings.EqualFold(u.Scheme, "http") && identity.IsLoopbackBase(base):
		return nil
	}
	return errors.New("the AuthAPI base is not https (plain http is allowed on a loopback host only)")
}

// PersonalAccessTokenLogin returns the credential a hydrated personal
// access token is used as: a ChatGPT login whose access token is the
// personal access token, routed to md's account, with
// ExternallyManaged set so that it is never refreshed and no Agent
// Identity is provisioned from it (Codex provisions identities only from
// a login it refreshes itself), and PersonalAccessToken set to say what
// it is. source is kept as Credentials.Source.
func PersonalAccessTokenLogin(token string, md PersonalAccessTokenMetadata, source string) *Credentials {
	return &Credentials{
		Kind: KindChatGPT,
		ChatGPT: &ChatGPTLogin{
			AccessToken:       token,
			AccountID:         md.AccountID,
			UserID:            md.UserID,
			FedRAMP:           md.FedRAMP,
			ExternallyManaged: true,
		},
		PersonalAccessToken: true,
		Source:              source,
	}
}
