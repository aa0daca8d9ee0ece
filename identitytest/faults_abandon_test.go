package identitytest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Hang and latency faults stop as soon as the client gives up: the
// handler returns without waiting for Close or for the delay to pass.
func TestFaultsStopWhenClientGivesUp(t *testing.T) {
	for name, f := range map[string]Fault{"hang": {Hang: true}, "latency": {Latency: time.Hour}} {
		t.Run(name, func(t *testing.T) {
			s, err := NewServer(Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.InjectFault(RouteResource, f)
			done := make(chan struct{}, 1)
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() { done <- struct{}{} }()
				s.Handler().ServeHTTP(w, r)
			}))
			defer front.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/v1/responses", nil)
			if resp, err := front.Client().Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("the faulted request was answered")
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the handler kept running after the client gave up")
			}
		})
	}
}
