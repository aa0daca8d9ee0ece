package taskcache

import (
	"errors"
	"fmt"
)

// errEmptyTaskID fails a registration that "succeeded" without an id, which
// would otherwise be cached and sent in every assertion.
var errEmptyTaskID = errors.New("RegisterFunc returned an empty task id")

func waitError(err error) error {
	return fmt.Errorf("taskcache: stopped waiting for task registration: %w", err)
}
