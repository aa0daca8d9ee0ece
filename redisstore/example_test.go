package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/redisstore"
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
	// The credential is detected from the Codex home (auth.json, env).
	rt, err := transport.New(nil, transport.Options{Fleet: transport.Fleet{TaskStore: store}})
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
	key := transport.TaskKey{RuntimeID: "rt-example", ExternalRef: "thread-1"}
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

// A fleet replica in one call: transport.NewClient reads the Codex home as
// it does for a single process (the ChatGPT login of auth.json, the
// use_agent_identity flag), and one Store shares with the other replicas
// the login's refreshes (its refresh token is single use), its agent
// identity and the task of each conversation thread. The sealing key,
// base64 of 32 random bytes (openssl rand -base64 32), comes from
// AGENTAUTH_REDIS_SEALING_KEY; list the previous key after a comma while
// rotating.
func Example_agentauth() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "redis.internal:6379",
		ContextTimeoutEnabled: true, // required: OpTimeout bounds every call through the context
		DialerRetries:         1,
	})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{}) // sealing key from the environment
	if err != nil {
		log.Fatal(err)
	}
	httpClient, err := transport.NewClient(transport.Options{Fleet: transport.Fleet{
		// Seeded with this replica's auth.json unless the fleet has a
		// newer token set; fails with redisstore.ErrNoSealingKey without
		// a key.
		RefreshCoordinator: store.Coordinators(redisstore.CoordinatorOptions{}),
		IdentityStore:      store, // one agent identity per login, fleet-wide
		TaskStore:          store, // one task per thread, fleet-wide
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer httpClient.CloseIdleConnections()
	// Requests made with transport.WithThread(ctx, id) share the thread's
	// task fleet-wide.
}

// The same fleet in steps: the credential detected first (to check and
// log what the Codex home holds), then a transport over a base of one's
// own, with the flag forced on. Close stops the Coordinator's background
// publish at shutdown.
func Example_fleet() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "redis.internal:6379",
		ContextTimeoutEnabled: true,
		DialerRetries:         1,
	})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{}) // sealing key from the environment
	if err != nil {
		log.Fatal(err)
	}
	opts := transport.Options{
		AgentIdentity: featureflag.New(true),
		Fleet: transport.Fleet{
			// A ChatGPT login refreshes once per expiry, fleet-wide,
			// seeding the fleet if no replica did yet.
			RefreshCoordinator: store.Coordinators(redisstore.CoordinatorOptions{}),
			IdentityStore:      store, // one agent identity per login, fleet-wide
			TaskStore:          store, // one task per thread, fleet-wide
		},
	}
	cred, err := transport.Detect(context.Background(), opts)
	if err != nil {
		log.Fatal(err) // redisstore.ErrNoSealingKey without a key
	}
	log.Printf("authenticating with %v", cred) // never prints a secret
	opts.Credential = cred
	base := &http.Transport{MaxIdleConnsPerHost: 16}
	rt, err := transport.New(base, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	_ = &http.Client{Transport: rt}
}

// Redis never holds a secret in the clear: without a sealing key, storing
// an identity or coordinating a login's tokens is refused, while thread
// tasks (which are not secrets) are still shared.
func ExampleErrNoSealingKey() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, DialerRetries: 1})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.RefreshCoordinator(transport.Login{AccountID: "acct-1"}, redisstore.CoordinatorOptions{})
	fmt.Println(errors.Is(err, redisstore.ErrNoSealingKey))
	// Output:
	// true
}

// With Redis unreachable, Lock and Load fail fast with a temporary error,
// so a refresher keeps using its still-valid token instead of refreshing
// on its own; the outage is counted.
func ExampleCoordinator_Lock_unavailable() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, DialerRetries: 1})
	defer client.Close()
	sealer, err := redisstore.NewSealer(make([]byte, redisstore.SealingKeySize)) // a real key is random
	if err != nil {
		log.Fatal(err)
	}
	store, err := redisstore.New(client, redisstore.Options{Sealer: sealer})
	if err != nil {
		log.Fatal(err)
	}
	coord, err := store.RefreshCoordinator(transport.Login{AccountID: "acct-1"}, redisstore.CoordinatorOptions{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = coord.Lock(context.Background())
	fmt.Println("temporary:", transport.IsTemporary(err))
	st := coord.Stats()
	fmt.Println("outages:", st.Outages, "down:", st.Down)
	// Output:
	// temporary: true
	// outages: 1 down: true
}
