package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/redis/go-redis/v9"
)

func TestNewValidation(t *testing.T) {
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	noCtx := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer noCtx.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   Options
		want   string
	}{
		{"nil client", nil, Options{}, "nil Redis client"},
		{"context timeouts off", noCtx, Options{}, "ContextTimeoutEnabled"},
		{"negative TTL", ok, Options{TTL: -1}, "TTL"},
		{"negative lock", ok, Options{LockTimeout: -1}, "LockTimeout"},
		{"negative poll", ok, Options{PollInterval: -1}, "PollInterval"},
		{"negative max poll", ok, Options{MaxPollInterval: -1}, "MaxPollInterval"},
		{"negative op timeout", ok, Options{OpTimeout: -1}, "OpTimeout"},
		{"max poll below poll", ok, Options{PollInterval: time.Second, MaxPollInterval: time.Millisecond}, "below PollInterval"},
		{"sub-millisecond TTL", ok, Options{TTL: time.Microsecond}, "millisecond"},
		{"lock not above op timeout", ok, Options{LockTimeout: time.Second, OpTimeout: time.Second}, "must exceed OpTimeout"},
		{"brace in prefix", ok, Options{Prefix: "x{y}:"}, "brace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.client, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	s, err := New(ok, Options{PollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	o := s.opts
	if o.Prefix != DefaultPrefix || o.TTL != DefaultTTL || o.LockTimeout != DefaultLockTimeout ||
		o.OpTimeout != DefaultOpTimeout || o.PollInterval != time.Second || o.MaxPollInterval != time.Second {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if o.LockTimeout < taskcache.DefaultTimeout {
		t.Fatalf("default LockTimeout %v is shorter than the registration timeout %v", o.LockTimeout, taskcache.DefaultTimeout)
	}
}

func TestCoordinatorOptionsValidated(t *testing.T) {
	addr := redisAddr(t)
	s := newSealedStore(t, addr, newSealer(t, newKey(t)), Options{OpTimeout: time.Second})
	login := credentials.Login{AccountID: "acct-opts"}
	for _, o := range []CoordinatorOptions{{LockTimeout: -1}, {OutageBound: -1}, {LockTimeout: time.Second}} {
		if _, err := s.RefreshCoordinator(login, o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
	if _, err := s.RefreshCoordinator(login, CoordinatorOptions{Initial: &credentials.TokenSet{RefreshToken: "r"}}); err == nil {
		t.Fatal("an Initial without an access token was accepted")
	}
}
