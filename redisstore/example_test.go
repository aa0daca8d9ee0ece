package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/redisstore"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
	"github.com/redis/go-redis/v9"
)

// Every replica of a service builds its transport with a Store on the
// same Redis, so each conversation thread registers one task for the
// whole fleet.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "redis.internal:6379",
		ContextTimeoutEnabled: true, // required: OpTimeout bounds every call through the context
		DialerRetries:         1,    // fail over to local registration quickly when Redis is down
	})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	creds, err := credentials.Load(credentials.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	rt, err := transport.New(nil, transport.Config{Credentials: creds, TaskStore: store})
	if err != nil {
		log.Fatal(err)
	}
	httpClient := &http.Client{Transport: rt}
	_ = httpClient // requests made with transport.WithThread(ctx, id) share the thread's task fleet-wide
}

// When Redis cannot be reached the store registers locally, so requests
// keep flowing; the outage shows in Stats and is logged once.
func ExampleStore_Resolve_unavailable() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:1", // nothing listens here
		ContextTimeoutEnabled: true,
		DialerRetries:         1,
	})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	key := resolver.StoreKey{RuntimeID: "rt-example", ExternalRef: "thread-1"}
	id, err := store.Resolve(context.Background(), key, func(context.Context) (string, error) {
		return "task-registered-locally", nil
	})
	st := store.Stats()
	fmt.Println(id, err)
	fmt.Println("local fallbacks:", st.LocalFallbacks, "outages:", st.Outages, "down:", st.Down)
	// Output:
	// task-registered-locally <nil>
	// local fallbacks: 1 outages: 1 down: true
}
