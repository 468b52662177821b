package control

import (
	"context"
	"encoding/base64"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/ipam"
	"github.com/wirefleet/wirefleet/internal/store"
)

// PeerInput creates a peer.
type PeerInput struct {
	Network   string
	PublicKey wirefleet.Key
	Name      string
	// Addresses are static addresses; empty means IPAM allocates one per network family.
	// Static addresses are used exactly as given (no other family is added).
	Addresses    []netip.Addr
	PresharedKey *wirefleet.Key
	// Disabled creates the peer disabled (the zero value creates it enabled).
	Disabled bool
	// ExpiresAt nil means never. A time not in the future creates the peer already expired.
	ExpiresAt *time.Time
}

// PeerUpdate changes a peer; nil fields are left alone.
type PeerUpdate struct {
	Name *string
	// Addresses replaces the addresses with these static ones (checked like on create).
	Addresses         *[]netip.Addr
	PresharedKey      *wirefleet.Key
	ClearPresharedKey bool
	Enabled           *bool
	// ExpiresAt sets the expiry; ClearExpiry removes it (never expires).
	ExpiresAt   *time.Time
	ClearExpiry bool
}

// PeerFilter selects peers for ListPeers.
type PeerFilter struct {
	Network    string // "" = all networks
	Enabled    *bool
	Expired    *bool
	NamePrefix string
	// Cursor is PeerPage.NextCursor of the previous page ("" = first page).
	Cursor string
	// Limit is the page size: 0 = DefaultPageSize, at most MaxPageSize.
	Limit int
}

// Page sizes of ListPeers.
const (
	DefaultPageSize = 100
	MaxPageSize     = 100000
)

// PeerPage is one page of peers, ordered by (network, public key).
type PeerPage struct {
	Peers []wirefleet.Peer
	// NextCursor continues the listing; "" when this is the last page.
	NextCursor string
}

func (s *Service) newPeer(in PeerInput, now time.Time) (wirefleet.Peer, error) {
	if in.ExpiresAt != nil && in.ExpiresAt.IsZero() {
		return wirefleet.Peer{}, wirefleet.Errorf(wirefleet.KindInvalid, "expires_at is the zero time; omit it for never")
	}
	p := wirefleet.Peer{
		Network:      in.Network,
		PublicKey:    in.PublicKey,
		Name:         in.Name,
		PresharedKey: wirefleet.SecretKeyFrom(in.PresharedKey),
		Enabled:      !in.Disabled,
		ExpiresAt:    normTime(in.ExpiresAt),
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	p.Expired = p.ExpiresAt != nil && !p.ExpiresAt.After(now)
	if err := wirefleet.ValidateNetworkName(p.Network); err != nil {
		return p, err
	}
	if p.PublicKey.IsZero() {
		return p, wirefleet.Errorf(wirefleet.KindInvalid, "public_key is missing")
	}
	return p, wirefleet.ValidateName("name", p.Name)
}

func normTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// addPeer allocates or reserves the addresses of p and inserts it; inside an Update.
func (s *Service) addPeer(tx store.Tx, n wirefleet.Network, p *wirefleet.Peer, static []netip.Addr) error {
	pool, err := s.pool(tx, n)
	if err != nil {
		return err
	}
	if len(static) > 0 {
		if err := pool.Reserve(static); err != nil {
			return err
		}
		p.Addresses = slices.Clone(static)
	} else {
		addrs, err := pool.Allocate()
		if err != nil {
			return err
		}
		p.Addresses = addrs
	}
	addrs := p.Addresses
	tx.AfterRollback(func() { pool.Release(addrs) })
	if err := p.Validate(); err != nil {
		return err
	}
	if err := tx.InsertPeer(*p); err != nil {
		if wirefleet.IsKind(err, wirefleet.KindConflict) {
			// A duplicate key, or an address the pool missed but the database has (the
			// unique index is the last guard): rebuild the pool next time, to be safe.
			tx.AfterRollback(func() { s.dropPool(n.Name, pool) })
		}
		return err
	}
	return nil
}

// CreatePeer adds a peer, allocating its addresses unless static ones are given.
// KindConflict if the key exists in the network, an address is taken or the pool is full.
func (s *Service) CreatePeer(ctx context.Context, in PeerInput) (wirefleet.Peer, error) {
	p, err := s.newPeer(in, s.clock())
	if err != nil {
		return wirefleet.Peer{}, err
	}
	err = s.st.Update(ctx, func(tx store.Tx) error {
		n, err := s.network(tx, p.Network)
		if err != nil {
			return err
		}
		return s.addPeer(tx, n, &p, in.Addresses)
	})
	if err != nil {
		return wirefleet.Peer{}, err
	}
	return p, nil
}

// GetPeer returns one peer.
func (s *Service) GetPeer(ctx context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error) {
	var p wirefleet.Peer
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		p, err = tx.GetPeer(network, pub)
		return err
	})
	return p, err
}

// ListPeers returns a page of peers matching f.
func (s *Service) ListPeers(ctx context.Context, f PeerFilter) (PeerPage, error) {
	if f.Limit < 0 || f.Limit > MaxPageSize {
		return PeerPage{}, wirefleet.Errorf(wirefleet.KindInvalid, "limit %d is out of range: use 1-%d", f.Limit, MaxPageSize)
	}
	if f.Limit == 0 {
		f.Limit = DefaultPageSize
	}
	if f.Network != "" {
		if err := wirefleet.ValidateNetworkName(f.Network); err != nil {
			return PeerPage{}, err
		}
	}
	q := store.PeerQuery{Network: f.Network, Enabled: f.Enabled, Expired: f.Expired, NamePrefix: f.NamePrefix, Limit: f.Limit + 1}
	if f.Cursor != "" {
		id, err := DecodeCursor(f.Cursor)
		if err != nil {
			return PeerPage{}, err
		}
		q.After = &id
	}
	var page PeerPage
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		if f.Network != "" {
			if _, err := tx.GetNetwork(f.Network); err != nil {
				return err
			}
		}
		ps, err := tx.ListPeers(q)
		page.Peers = ps
		return err
	})
	if err != nil {
		return PeerPage{}, err
	}
	if len(page.Peers) > f.Limit {
		page.Peers = page.Peers[:f.Limit]
		last := page.Peers[len(page.Peers)-1]
		page.NextCursor = EncodeCursor(store.PeerID{Network: last.Network, PublicKey: last.PublicKey})
	}
	return page, nil
}

// EncodeCursor returns the opaque cursor that continues after id.
func EncodeCursor(id store.PeerID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id.Network + "/" + id.PublicKey.String()))
}

// DecodeCursor parses a cursor made by EncodeCursor (outside input).
func DecodeCursor(c string) (store.PeerID, error) {
	bad := wirefleet.Errorf(wirefleet.KindInvalid, "cursor %q is invalid: pass next_cursor of the previous page unchanged", c)
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil {
		return store.PeerID{}, bad
	}
	network, key, ok := strings.Cut(string(b), "/")
	if !ok || wirefleet.ValidateNetworkName(network) != nil {
		return store.PeerID{}, bad
	}
	k, err := wirefleet.ParseKey(key)
	if err != nil {
		return store.PeerID{}, bad
	}
	return store.PeerID{Network: network, PublicKey: k}, nil
}

// UpdatePeer applies u to a peer.
func (s *Service) UpdatePeer(ctx context.Context, network string, pub wirefleet.Key, u PeerUpdate) (wirefleet.Peer, error) {
	if u.ExpiresAt != nil && u.ExpiresAt.IsZero() {
		return wirefleet.Peer{}, wirefleet.Errorf(wirefleet.KindInvalid, "expires_at is the zero time; clear the expiry instead")
	}
	if u.Name != nil {
		if err := wirefleet.ValidateName("name", *u.Name); err != nil {
			return wirefleet.Peer{}, err
		}
	}
	var out wirefleet.Peer
	err := s.st.Update(ctx, func(tx store.Tx) error {
		p, err := tx.GetPeer(network, pub)
		if err != nil {
			return err
		}
		now := s.clock()
		if u.Name != nil {
			p.Name = *u.Name
		}
		if u.ClearPresharedKey {
			p.PresharedKey = wirefleet.SecretKey{}
		}
		if u.PresharedKey != nil {
			p.PresharedKey = wirefleet.NewSecretKey(*u.PresharedKey)
		}
		if u.Enabled != nil {
			p.Enabled = *u.Enabled
		}
		if u.ClearExpiry {
			p.ExpiresAt = nil
		}
		if u.ExpiresAt != nil {
			p.ExpiresAt = normTime(u.ExpiresAt)
		}
		p.Expired = p.ExpiresAt != nil && !p.ExpiresAt.After(now)
		p.UpdatedAt = now
		if u.Addresses != nil {
			if err := s.readdressPeer(tx, &p, *u.Addresses); err != nil {
				return err
			}
		}
		if err := p.Validate(); err != nil {
			return err
		}
		if err := tx.UpdatePeer(p); err != nil {
			return err
		}
		out = p
		return nil
	})
	return out, err
}

// readdressPeer reserves the new addresses of p and releases the old ones on commit.
func (s *Service) readdressPeer(tx store.Tx, p *wirefleet.Peer, addrs []netip.Addr) error {
	if len(addrs) == 0 {
		return wirefleet.Errorf(wirefleet.KindInvalid, "addresses: a peer needs at least one address")
	}
	n, err := s.network(tx, p.Network)
	if err != nil {
		return err
	}
	pool, err := s.pool(tx, n)
	if err != nil {
		return err
	}
	var added, removed []netip.Addr
	for _, a := range addrs {
		if !slices.Contains(p.Addresses, a) {
			added = append(added, a)
		}
	}
	for _, a := range p.Addresses {
		if !slices.Contains(addrs, a) {
			removed = append(removed, a)
		}
	}
	if err := pool.Reserve(added); err != nil {
		return err
	}
	tx.AfterRollback(func() { pool.Release(added) })
	tx.AfterCommit(func() { s.releaseIfCurrent(p.Network, pool, removed) })
	p.Addresses = slices.Clone(addrs)
	return nil
}

// releaseIfCurrent frees addresses in pool if it is still the network's cached pool: a pool
// rebuilt after the change already reads them as free and may have handed them out again.
func (s *Service) releaseIfCurrent(network string, pool *ipam.Pool, addrs []netip.Addr) {
	if e, ok := s.pools[network]; ok && e.pool == pool {
		pool.Release(addrs)
	}
}

// EnablePeer enables a peer.
func (s *Service) EnablePeer(ctx context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error) {
	t := true
	return s.UpdatePeer(ctx, network, pub, PeerUpdate{Enabled: &t})
}

// DisablePeer disables a peer (it leaves the gateways, its record stays).
func (s *Service) DisablePeer(ctx context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error) {
	f := false
	return s.UpdatePeer(ctx, network, pub, PeerUpdate{Enabled: &f})
}

// SetPeerExpiry sets (at != nil) or clears (nil) a peer's expiry. A future expiry revives
// an expired peer; a past one expires it at once.
func (s *Service) SetPeerExpiry(ctx context.Context, network string, pub wirefleet.Key, at *time.Time) (wirefleet.Peer, error) {
	if at == nil {
		return s.UpdatePeer(ctx, network, pub, PeerUpdate{ClearExpiry: true})
	}
	return s.UpdatePeer(ctx, network, pub, PeerUpdate{ExpiresAt: at})
}

// DeletePeer deletes a peer and frees its addresses.
func (s *Service) DeletePeer(ctx context.Context, network string, pub wirefleet.Key) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		p, err := tx.GetPeer(network, pub)
		if err != nil {
			return err
		}
		n, err := s.network(tx, network)
		if err != nil {
			return err
		}
		pool, err := s.pool(tx, n)
		if err != nil {
			return err
		}
		if err := tx.DeletePeer(network, pub); err != nil {
			return err
		}
		tx.AfterCommit(func() { s.releaseIfCurrent(network, pool, p.Addresses) })
		return nil
	})
}

// sweepBatch bounds one expiry transaction so the writer is never held for long.
const sweepBatch = 1000

// ExpirePeers marks every peer whose expiry has passed as expired (one peer.put op each,
// so gateways remove it; the record is kept). It returns how many it expired.
func (s *Service) ExpirePeers(ctx context.Context) (int, error) {
	total := 0
	for {
		now := s.clock()
		f := false
		n := 0
		// Look on the read pool first: most sweeps find nothing and need not touch the writer.
		var due []wirefleet.Peer
		err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
			due, err = tx.ListPeers(store.PeerQuery{Expired: &f, ExpiresBefore: &now, Limit: 1})
			return err
		})
		if err != nil || len(due) == 0 {
			return total, err
		}
		err = s.st.Update(ctx, func(tx store.Tx) error {
			ps, err := tx.ListPeers(store.PeerQuery{Expired: &f, ExpiresBefore: &now, Limit: sweepBatch})
			if err != nil {
				return err
			}
			for _, p := range ps {
				p.Expired = true
				p.UpdatedAt = now
				if err := tx.UpdatePeer(p); err != nil {
					return err
				}
			}
			n = len(ps)
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
