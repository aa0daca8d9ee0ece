package headers_test

import (
	"fmt"
	"net/http"

	"github.com/agentauth/agentauth/internal/headers"
)

// Routing headers are what survives the switch from Bearer to
// AgentAssertion; Redact is how credentials are shown in logs and -v output.
func Example() {
	h := http.Header{}
	routing := headers.Routing{AccountID: "acct-1", FedRAMP: true}
	if err := routing.Validate(); err != nil {
		panic(err)
	}
	routing.Apply(h)
	bearer, _ := headers.Bearer("secret-token")
	h.Set(headers.Authorization, bearer)

	for _, name := range []string{"Authorization", "ChatGPT-Account-ID", "X-OpenAI-Fedramp"} {
		fmt.Printf("%s: %s\n", name, headers.Redact(name, h.Get(name)))
	}
	fmt.Println(headers.ValidateValue("ChatGPT-Account-ID", "acct\r\nX-Injected: 1"))
	// Output:
	// Authorization: Bearer [REDACTED]
	// ChatGPT-Account-ID: acct-1
	// X-OpenAI-Fedramp: true
	// headers: invalid header value: ChatGPT-Account-ID has a control character at byte 4
}
