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

// FromResponse reads what resp says about usage: its headers, as
// [FromHeader], and for a 429 its body, which it reads (at most 64 KiB)
// and puts back, so the caller can still read resp.Body whole and must
// still close it. A 429 body that reports a usage limit of the login,
//
//	{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_at":1767225600,…}}
//
// (or "usage_not_included"), sets LimitReached, LimitResetsAt and
// PlanType; any other 429 is a plain rate limit, as for Codex, and so is
// a body that is not the JSON Codex expects (a resets_at that is not an
// integer, for one).
func FromResponse(resp *http.Response) Snapshot {
	if resp == nil {
		return Snapshot{}
	}
	s := FromHeader(resp.Header)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Body == nil || resp.Body == http.NoBody {
		return s
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLimitBody))
	resp.Body = &rewound{Reader: io.MultiReader(bytes.NewReader(data), resp.Body), Closer: resp.Body}
	if err != nil {
		return s
	}
	parseLimitBody(data, &s)
	return s
}

// parseLimitBody reads the body of a 429 into s. It leaves s alone when
// the body is not a usage limit of a kind Codex knows or is not the JSON
// Codex expects.
func parseLimitBody(body []byte, s *Snapshot) {
	var v struct {
		Error *struct {
			Type     *string         `json:"type"`
			PlanType json.RawMessage `json:"plan_type"`
			ResetsAt *int64          `json:"resets_at"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == nil || v.Error.Type == nil {
		return
	}
	if t := *v.Error.Type; t != limitReached && t != limitNotIncluded {
		return
	}
	s.LimitReached = *v.Error.Type
	if p := planType(v.Error.PlanType); p != "" {
		s.PlanType = p
	}
	if v.Error.ResetsAt != nil {
		s.LimitResetsAt = time.Unix(*v.Error.ResetsAt, 0)
	}
}

// rewound is a body whose first bytes were read ahead: it reads them
// again, then the rest, and closes the original.
type rewound struct {
	io.Reader
	io.Closer
}
