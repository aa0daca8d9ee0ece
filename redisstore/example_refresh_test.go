package redisstore_test

import (
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/redisstore"
	"github.com/agentauth/agentauth/transport"
)

// A replica of a fleet on one ChatGPT login, wired completely: the Store
// shares thread tasks and the agent identity, and the login's refreshing
// token source refreshes through the Store's Coordinator, so the fleet
// presents each single-use refresh token once. The README's "Running a
// fleet" snippet is this example.
func Example_fleetRefresh() {
	client := redis.NewClient(&redis.Options{
		Addr: "redis.internal:6379", ContextTimeoutEnabled: true, DialerRetries: 1,
	})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{}) // sealing key: AGENTAUTH_REDIS_SEALING_KEY
	if err != nil {
		log.Fatal(err)
	}
	creds, err := credentials.Load(credentials.LoadOptions{}) // this replica's auth.json seeds the fleet
	if err != nil || creds.ChatGPT == nil {
		log.Fatal("no ChatGPT login: ", err)
	}
	l := creds.ChatGPT
	coord, err := store.RefreshCoordinator(credentials.Login{AccountID: l.AccountID}, redisstore.CoordinatorOptions{
		Initial: &credentials.TokenSet{IDToken: l.IDToken, AccessToken: l.AccessToken,
			RefreshToken: l.RefreshToken, AccountID: l.AccountID, LastRefresh: l.LastRefresh},
	})
	if err != nil {
		log.Fatal(err)
	}
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{Coordinator: coord})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	rt, err := transport.New(nil, transport.Config{
		Credentials: creds, TokenSource: src, Flag: featureflag.New(true),
		IdentityStore: store, TaskStore: store,
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = &http.Client{Transport: rt}
}
