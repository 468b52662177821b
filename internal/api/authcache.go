package api

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
)

// authCacheTTL bounds how long a verified token is trusted without asking the store again.
// Revocations through this server take effect at once (the cache is cleared); the TTL only
// matters for changes that bypass it, and it keeps one store read off every request, which
// is a sixth of the CPU of a peer create at high concurrency.
const authCacheTTL = time.Second

// authCache remembers successful authentications by the SHA-256 of the secret (never the
// secret itself). Failures are never cached, so a new token works at once.
type authCache struct {
	next Authenticator
	now  func() time.Time

	mu      sync.Mutex // guards entries
	entries map[[sha256.Size]byte]authEntry
}

type authEntry struct {
	tok wirefleet.Token
	at  time.Time
}

func newAuthCache(next Authenticator, now func() time.Time) *authCache {
	return &authCache{next: next, now: now, entries: make(map[[sha256.Size]byte]authEntry)}
}

// Authenticate implements Authenticator.
func (c *authCache) Authenticate(ctx context.Context, secret string) (wirefleet.Token, error) {
	h := sha256.Sum256([]byte(secret))
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < authCacheTTL && now.Sub(e.at) >= 0 && !e.tok.Expired(now) {
		return e.tok, nil
	}
	tok, err := c.next.Authenticate(ctx, secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		delete(c.entries, h)
		return tok, err
	}
	if len(c.entries) > 10000 { // bounded: a flood of distinct valid tokens just resets it
		clear(c.entries)
	}
	c.entries[h] = authEntry{tok: tok, at: now}
	return tok, nil
}

// invalidate forgets every cached authentication (after a token is revoked).
func (c *authCache) invalidate() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
