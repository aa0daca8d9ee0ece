package credentials

import "strconv"

// Kind says which credential a [Credentials] holds. The zero value is
// [KindNone].
type Kind int

// The credential kinds agentauth knows.
const (
	KindNone          Kind = iota // no credential: requests get no Authorization header
	KindAPIKey                    // an API key, always sent as Bearer
	KindChatGPT                   // a ChatGPT login (access token, account id, FedRAMP bit)
	KindAgentIdentity             // an Agent Identity record, sent as AgentAssertion
)

// String returns "none", "apikey", "chatgpt" or "agentIdentity" (the
// auth.json auth_mode spelling where one exists), or "Kind(n)" for a value
// outside the enumeration.
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindAPIKey:
		return "apikey"
	case KindChatGPT:
		return "chatgpt"
	case KindAgentIdentity:
		return "agentIdentity"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}
