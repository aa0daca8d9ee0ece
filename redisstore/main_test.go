package redisstore

import (
	"testing"

	"github.com/redis/go-redis/v9/logging"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis logs every refused dial to stderr; the outage tests cause
	// many on purpose and assert on the store's own logging instead.
	logging.Disable()
	goleak.VerifyTestMain(m)
}
