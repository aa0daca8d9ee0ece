package identitytest

import (
	"context"
	"errors"
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
			started, done := make(chan struct{}, 1), make(chan struct{}, 1)
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() { done <- struct{}{} }()
				started <- struct{}{}
				s.Handler().ServeHTTP(w, r)
			}))
			defer front.Close()
			// The client gives up once the handler runs, not after a fixed
			// delay: on a loaded machine a 100 ms timeout could end the
			// request before it reached the handler, which then never ran.
			// The timeout only bounds a request that never arrives.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go func() {
				select {
				case <-started:
					cancel()
				case <-ctx.Done():
				}
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/v1/responses", nil)
			if resp, err := front.Client().Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("the faulted request was answered")
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatal("the request never reached the handler")
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler kept running after the client gave up")
			}
		})
	}
}
