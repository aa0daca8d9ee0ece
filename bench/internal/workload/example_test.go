package workload_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// seen is a base transport that prints the scheme of the credential and
// the routing header each request arrives with.
type seen struct{ nop *workload.NopBase }

func (s seen) RoundTrip(req *http.Request) (*http.Response, error) {
	scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	fmt.Println(scheme, req.Header.Get("ChatGPT-Account-ID"))
	return s.nop.RoundTrip(req)
}

// Build a case over a base of your own; Build sends one warm-up request.
func ExampleCase_Build() {
	c, _ := workload.CaseNamed("thread")
	reg := &workload.Registrar{}
	t, err := c.Build(context.Background(), workload.Env{Base: seen{workload.NewNopBase()}, Registrar: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := t.Send(workload.NewRequest(t.Ctx, workload.ResourceURL)); err != nil {
		fmt.Println(err)
	}
	fmt.Println("registrations:", reg.Calls())
	// Output:
	// AgentAssertion acct-bench-0001
	// AgentAssertion acct-bench-0001
	// registrations: 1
}
