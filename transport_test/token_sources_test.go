package transport_test

// Token sources the tests wrap.

import (
	"context"
	"sync/atomic"

	"github.com/agentauth/agentauth/internal/credentials"
)

// countingSource counts the refreshes asked of a refreshing token source.
type countingSource struct {
	inner     credentials.TokenSource
	refreshes atomic.Int64
}

func (s *countingSource) Token(ctx context.Context) (*credentials.Token, error) {
	return s.inner.Token(ctx)
}

func (s *countingSource) Refresh(ctx context.Context, rejected *credentials.Token) (*credentials.Token, error) {
	s.refreshes.Add(1)
	return s.inner.(credentials.Refresher).Refresh(ctx, rejected)
}
