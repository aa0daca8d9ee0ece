package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// ColdClient measures the client side of a new thread's first request
// without a network or a server: registrations go to a [Registrar] and
// requests to a [NopBase], so what remains is what ours and the by-hand
// path do themselves (two signatures each, plus their bookkeeping).
type ColdClient struct {
	rt   *transport.Transport
	reg  *Registrar
	key  *identity.PrivateKey
	rec  identity.Record
	base *NopBase
	seq  int
}

// NewColdClient builds both paths; the thread cache holds capacity keys
// (older ones are evicted, as a long benchmark makes more).
func NewColdClient(capacity int) (*ColdClient, error) {
	rec := NewRecord()
	key, err := rec.Key()
	if err != nil {
		return nil, err
	}
	cred, err := AgentIdentity(rec)
	if err != nil {
		return nil, err
	}
	c := &ColdClient{reg: &Registrar{}, key: key, rec: rec, base: NewNopBase()}
	c.rt, err = transport.New(c.base, transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		HTTPClient:    c.reg.Client(),
		Tuning:        transport.Tuning{MaxThreads: capacity},
	})
	return c, err
}

// Ours is the first request of a new thread key per iteration through our
// transport, on a cancelable context as a handler's is.
func (c *ColdClient) Ours(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c.seq++
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(transport.WithThread(ctx, "cold-client-"+strconv.Itoa(c.seq)),
			http.MethodPost, ResourceURL, http.NoBody)
		req.Header.Set("Content-Type", "application/json")
		err := send(c.rt, req)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// ByHand is the same done by hand per iteration: the registration
// signature and body, the registration call, decoding the task id, the
// assertion signature and the request with its two headers.
func (c *ColdClient) ByHand(b *testing.B) {
	b.ReportAllocs()
	client := c.reg.Client()
	registerURL := identity.DefaultAuthAPIBase + "/v1/agent/" + c.rec.AgentRuntimeID + "/task/register"
	for b.Loop() {
		c.seq++
		if err := c.byHand(client, registerURL, "cold-client-"+strconv.Itoa(c.seq)); err != nil {
			b.Fatal(err)
		}
	}
}

func (c *ColdClient) byHand(client *http.Client, registerURL, thread string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig, ts := identity.RegistrationSignature(c.key, c.rec.AgentRuntimeID, time.Now())
	body := `{"timestamp":"` + ts + `","signature":"` + sig + `","external_task_ref":"` + thread + `"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, registerURL, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	var reg struct {
		TaskID string `json:"task_id"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&reg)
	resp.Body.Close()
	if err != nil || reg.TaskID == "" {
		return fmt.Errorf("by hand: registration: %v", err)
	}
	assertion, err := identity.SignAssertion(c.key, c.rec.AgentRuntimeID, reg.TaskID, time.Now())
	if err != nil {
		return err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, ResourceURL, http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header["Authorization"] = []string{assertion}
	req.Header["Chatgpt-Account-Id"] = []string{c.rec.AccountID}
	return send(c.base, req)
}

// Stats returns our transport's counters.
func (c *ColdClient) Stats() transport.Stats { return c.rt.Stats() }
