package processtask_test

import (
	"context"
	"fmt"

	"github.com/agentauth/agentauth/internal/processtask"
	"github.com/agentauth/agentauth/internal/taskcache"
)

// Two transports built on one identity share its process task: the first
// request of either registers it, every later one reuses it.
func ExampleShared() {
	registrations := 0
	register := func(ctx context.Context) (string, error) {
		registrations++
		return "task-1", nil
	}
	id := processtask.Identity{AuthAPIBase: "https://auth.openai.com/api/accounts", RuntimeID: "example-runtime"}
	a, _ := processtask.Shared(id, register, taskcache.CacheOptions{})
	b, _ := processtask.Shared(id, register, taskcache.CacheOptions{})

	ta, _ := a.Get(context.Background())
	tb, _ := b.Get(context.Background())
	fmt.Println(ta.ID(), tb.ID(), registrations)
	// Output: task-1 task-1 1
}
