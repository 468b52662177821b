package control

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"slices"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/store"
)

// TokenInput creates a token.
type TokenInput struct {
	Name     string
	Roles    []wirefleet.Role
	Networks []string // scope; empty = all networks
	// ExpiresAt nil means never; it must be in the future.
	ExpiresAt *time.Time
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomString(nbytes int) (string, error) {
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return strings.ToLower(b32.EncodeToString(b)), nil
}

// CreateToken creates a token and returns it with its secret. The secret is returned only
// here: the store keeps its SHA-256.
func (s *Service) CreateToken(ctx context.Context, in TokenInput) (wirefleet.Token, string, error) {
	now := s.clock()
	id, err := randomString(10) // 16 base32 chars
	if err != nil {
		return wirefleet.Token{}, "", err
	}
	random, err := randomString(32) // 256 bits
	if err != nil {
		return wirefleet.Token{}, "", err
	}
	secret := wirefleet.TokenSecretPrefix + id + "_" + random
	roles := slices.Clone(in.Roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	nets := slices.Clone(in.Networks)
	slices.Sort(nets)
	nets = slices.Compact(nets)
	t := wirefleet.Token{
		ID:        id,
		Name:      in.Name,
		Roles:     roles,
		Networks:  nets,
		ExpiresAt: normTime(in.ExpiresAt),
		CreatedAt: now,
		Hash:      wirefleet.HashTokenSecret(secret),
	}
	if t.ExpiresAt != nil && !t.ExpiresAt.After(now) {
		return wirefleet.Token{}, "", wirefleet.Errorf(wirefleet.KindInvalid, "expires_at %s is not in the future", t.ExpiresAt.Format(time.RFC3339))
	}
	if err := t.Validate(); err != nil {
		return wirefleet.Token{}, "", err
	}
	if err := s.st.Update(ctx, func(tx store.Tx) error { return tx.InsertToken(t) }); err != nil {
		return wirefleet.Token{}, "", err
	}
	return t, secret, nil
}

// GetToken returns a token (without secret).
func (s *Service) GetToken(ctx context.Context, id string) (wirefleet.Token, error) {
	var t wirefleet.Token
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		t, err = tx.GetToken(id)
		return err
	})
	return s.withUsage(t), err
}

// ListTokens returns all tokens (without secrets), last-used times included.
func (s *Service) ListTokens(ctx context.Context) ([]wirefleet.Token, error) {
	var ts []wirefleet.Token
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		ts, err = tx.ListTokens()
		return err
	})
	for i := range ts {
		ts[i] = s.withUsage(ts[i])
	}
	return ts, err
}

// RevokeToken deletes a token; it stops authenticating at once.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteToken(id) })
	if err == nil {
		s.usageMu.Lock()
		delete(s.usage, id)
		s.usageMu.Unlock()
	}
	return err
}

// errBadToken is deliberately the same for unknown, wrong and malformed secrets.
func errBadToken() error {
	return wirefleet.Errorf(wirefleet.KindUnauthorized, "invalid token: check the bearer token or create a new one")
}

// Authenticate returns the token whose secret this is. Unknown, wrong, malformed and
// expired secrets are KindUnauthorized. The hash comparison is constant-time; the last-used
// time is kept in memory and persisted by Run in batches (never one write per request).
func (s *Service) Authenticate(ctx context.Context, secret string) (wirefleet.Token, error) {
	id, ok := wirefleet.TokenIDFromSecret(secret)
	if !ok {
		return wirefleet.Token{}, errBadToken()
	}
	var t wirefleet.Token
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		t, err = tx.GetToken(id)
		return err
	})
	got := wirefleet.HashTokenSecret(secret)
	if wirefleet.IsKind(err, wirefleet.KindNotFound) {
		// Compare anyway so that unknown ids take the same time as wrong secrets.
		subtle.ConstantTimeCompare(got[:], make([]byte, len(got)))
		return wirefleet.Token{}, errBadToken()
	}
	if err != nil {
		return wirefleet.Token{}, err
	}
	if subtle.ConstantTimeCompare(got[:], t.Hash[:]) != 1 {
		return wirefleet.Token{}, errBadToken()
	}
	now := s.clock()
	if t.Expired(now) {
		return wirefleet.Token{}, wirefleet.Errorf(wirefleet.KindUnauthorized, "token %s expired at %s: create a new one", t.ID, t.ExpiresAt.Format(time.RFC3339))
	}
	s.usageMu.Lock()
	s.usage[t.ID] = now
	s.usageMu.Unlock()
	t.LastUsedAt = &now
	return t, nil
}

func (s *Service) withUsage(t wirefleet.Token) wirefleet.Token {
	s.usageMu.Lock()
	u, ok := s.usage[t.ID]
	s.usageMu.Unlock()
	if ok {
		t.LastUsedAt = &u
	}
	return t
}

// FlushTokenUsage persists pending last-used times in one write (no op is logged).
func (s *Service) FlushTokenUsage(ctx context.Context) error {
	s.usageMu.Lock()
	pending := s.usage
	s.usage = make(map[string]time.Time)
	s.usageMu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.TouchTokens(pending) })
	if err != nil {
		// Put them back unless newer uses arrived meanwhile.
		s.usageMu.Lock()
		for id, t := range pending {
			if cur, ok := s.usage[id]; !ok || cur.Before(t) {
				s.usage[id] = t
			}
		}
		s.usageMu.Unlock()
	}
	return err
}
