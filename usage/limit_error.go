package usage

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// maxLimitBody bounds how much of a 429 body [FromResponse] reads.
const maxLimitBody = 64 << 10

// LimitError is a 429 that reports a usage limit of the login, not a plain
// rate limit: its body is
//
//	{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_at":1767225600,…}}
//
// (or "usage_not_included"). It says nothing secret.
type LimitError struct {
	// Type is TypeUsageLimitReached or TypeUsageNotIncluded.
	Type string
	// PlanType is the login's plan, when the body says.
	PlanType string
	// ResetsAt is when the limit resets; zero when the body does not say.
	ResetsAt time.Time
	// Usage is what the 429's headers said.
	Usage Snapshot
}

// Error names the kind of limit and its reset time.
func (e *LimitError) Error() string {
	msg := "usage: " + e.Type
	if e.PlanType != "" {
		msg += " (plan " + e.PlanType + ")"
	}
	if !e.ResetsAt.IsZero() {
		msg += "; resets at " + e.ResetsAt.UTC().Format(time.RFC3339)
	}
	return msg
}

// ParseLimitError reads the body of a 429. It returns nil when the body is
// not a usage limit of a kind Codex knows (any other 429 is a plain rate
// limit) or is not the JSON Codex expects (a resets_at that is not an
// integer, for one).
func ParseLimitError(body []byte) *LimitError {
	var v struct {
		Error *struct {
			Type     *string         `json:"type"`
			PlanType json.RawMessage `json:"plan_type"`
			ResetsAt *int64          `json:"resets_at"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == nil || v.Error.Type == nil {
		return nil
	}
	if t := *v.Error.Type; t != TypeUsageLimitReached && t != TypeUsageNotIncluded {
		return nil
	}
	e := &LimitError{Type: *v.Error.Type, PlanType: planType(v.Error.PlanType)}
	if v.Error.ResetsAt != nil {
		e.ResetsAt = time.Unix(*v.Error.ResetsAt, 0)
	}
	return e
}

// FromResponse reads what resp says about usage: its headers, and for a
// 429 its body, which it reads (at most 64 KiB) and puts back, so the
// caller can still read resp.Body whole and must still close it. The
// *LimitError is nil unless the 429 is a usage limit.
func FromResponse(resp *http.Response) (Snapshot, *LimitError) {
	if resp == nil {
		return Snapshot{}, nil
	}
	s := FromHeader(resp.Header)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Body == nil || resp.Body == http.NoBody {
		return s, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLimitBody))
	resp.Body = &rewound{Reader: io.MultiReader(bytes.NewReader(data), resp.Body), Closer: resp.Body}
	if err != nil {
		return s, nil
	}
	le := ParseLimitError(data)
	if le != nil {
		le.Usage = s
	}
	return s, le
}

// rewound is a body whose first bytes were read ahead: it reads them
// again, then the rest, and closes the original.
type rewound struct {
	io.Reader
	io.Closer
}
