package control

import (
	"context"
	"net/netip"
	"slices"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/store"
)

// RegisterInput is one zero-touch device registration (specs/autowg.md): a device named by
// its certificate presents a public key and gets an address in a registration pool.
type RegisterInput struct {
	Network string
	// Name is the device's canonical name (the converter's output); it becomes the peer's
	// name, so registered devices show up under it in the API and CLI.
	Name      string
	PublicKey wirefleet.Key
	// Pool is the registration pool, inside the network's IPv6 prefix.
	Pool netip.Prefix
	// Address is the converter's address for Name; zero means "first free in Pool, and the
	// same one again for a name already registered" (the sequential converter).
	Address netip.Addr
}

// Registration is the outcome of Register.
type Registration struct {
	Peer wirefleet.Peer
	// Replaced are the keys of the name's previous peers, deleted in the same transaction.
	Replaced []wirefleet.Key
	// Changed is false when the name was already registered with this key: nothing was
	// written (the caller should still make sure the peer is on the device).
	Changed bool
}

// Register registers a device in one store transaction:
//   - same name, same key: nothing changes (Changed false);
//   - same name, new key: the name's old peer is replaced by the new one with the same
//     address, as one peer.replace op, so no consumer ever sees the name with no peer or
//     with two, and a gateway swaps the keys in one device transaction (duplicates of the
//     name made by hand, if any, are deleted in the same store transaction);
//   - a key registered under another name: KindConflict;
//   - an address held by a peer of another name: KindConflict;
//   - a disabled or expired peer of that name or key: KindForbidden (an administrator's
//     decision a device must not undo by registering again).
//
// Finding the name's previous peer: for a converter address, only when the address is
// already in use (the common case of a new device costs no scan); for sequential pools, a
// scan of the network's peers by name.
func (s *Service) Register(ctx context.Context, in RegisterInput) (Registration, error) {
	if err := wirefleet.ValidateName("name", in.Name); err != nil {
		return Registration{}, err
	}
	if in.Name == "" {
		return Registration{}, wirefleet.Errorf(wirefleet.KindInvalid, "name is empty")
	}
	if in.PublicKey.IsZero() {
		return Registration{}, wirefleet.Errorf(wirefleet.KindInvalid, "public key is missing or all zeros")
	}
	if in.Address.IsValid() && !in.Pool.Contains(in.Address) {
		return Registration{}, wirefleet.Errorf(wirefleet.KindInvalid, "address %s is outside the registration pool %s", in.Address, in.Pool)
	}
	var out Registration
	err := s.st.Update(ctx, func(tx store.Tx) error {
		out = Registration{}
		n, err := tx.GetNetwork(in.Network)
		if err != nil {
			return err
		}
		pool, err := s.pool(tx, n)
		if err != nil {
			return err
		}
		// The key first: re-registration with the same key, or a key stolen for another name.
		if p, err := tx.GetPeer(in.Network, in.PublicKey); err == nil {
			if p.Name != in.Name {
				return wirefleet.Errorf(wirefleet.KindConflict, "public key %s is already registered as %q in network %q; a device must use its own key", in.PublicKey, p.Name, in.Network)
			}
			if !p.Active() {
				return wirefleet.Errorf(wirefleet.KindForbidden, "device %q is disabled or expired in network %q", in.Name, in.Network)
			}
			if !in.Address.IsValid() || slices.Contains(p.Addresses, in.Address) {
				out.Peer = p
				return nil
			}
			// The converter changed since: move the peer to its new address (one op).
			if err := s.readdressPeer(tx, &p, []netip.Addr{in.Address}); err != nil {
				return err
			}
			p.UpdatedAt = s.clock()
			if err := tx.UpdatePeer(p); err != nil {
				return err
			}
			out.Peer, out.Changed = p, true
			return nil
		} else if !wirefleet.IsKind(err, wirefleet.KindNotFound) {
			return err
		}

		addr := in.Address
		var old []wirefleet.Peer
		if !addr.IsValid() || pool.Check(addr) != nil {
			if old, err = namedPeers(tx, in.Network, in.Name, in.Pool); err != nil {
				return err
			}
		}
		for _, p := range old {
			if !p.Active() {
				return wirefleet.Errorf(wirefleet.KindForbidden, "device %q is disabled or expired in network %q", in.Name, in.Network)
			}
		}
		var held []netip.Addr // addresses of the old peers, reused rather than reserved
		for _, p := range old {
			held = append(held, p.Addresses...)
		}
		if !addr.IsValid() {
			if len(old) > 0 {
				addr = old[0].Addresses[0]
			} else if addr, err = pool.FirstFreeIn(in.Pool); err != nil {
				return err
			}
		}
		if !slices.Contains(held, addr) {
			if err := pool.Reserve([]netip.Addr{addr}); err != nil {
				if wirefleet.IsKind(err, wirefleet.KindConflict) {
					return wirefleet.Errorf(wirefleet.KindConflict, "device %q maps to %s, which another device of network %q already holds (two names, one address): %v", in.Name, addr, in.Network, err)
				}
				return err
			}
			tx.AfterRollback(func() { pool.Release([]netip.Addr{addr}) })
		}
		var freed []netip.Addr
		for i, p := range old {
			// The first old peer is replaced by the new one below (one op); more than one
			// exists only if an administrator made duplicates by hand: those are deleted.
			if i > 0 {
				if err := tx.DeletePeer(in.Network, p.PublicKey); err != nil {
					return err
				}
			}
			out.Replaced = append(out.Replaced, p.PublicKey)
			for _, a := range p.Addresses {
				if a != addr {
					freed = append(freed, a)
				}
			}
		}
		if len(freed) > 0 {
			tx.AfterCommit(func() { s.releaseIfCurrent(in.Network, pool, freed) })
		}
		now := s.clock()
		p := wirefleet.Peer{Network: in.Network, PublicKey: in.PublicKey, Name: in.Name, Addresses: []netip.Addr{addr},
			Enabled: true, CreatedAt: now, UpdatedAt: now}
		if err := p.Validate(); err != nil {
			return err
		}
		insert := func() error { return tx.InsertPeer(p) }
		if len(old) > 0 {
			insert = func() error { return tx.ReplacePeer(old[0].PublicKey, p) }
		}
		if err := insert(); err != nil {
			if wirefleet.IsKind(err, wirefleet.KindConflict) {
				tx.AfterRollback(func() { s.dropPool(in.Network, pool) })
			}
			return err
		}
		out.Peer, out.Changed = p, true
		return nil
	})
	if err != nil {
		return Registration{}, err
	}
	return out, nil
}

// namedPeers returns the peers of network called exactly name whose addresses all lie in
// pool (a peer of the same name elsewhere, made by hand, is not a registration).
func namedPeers(tx store.ReadTx, network, name string, pool netip.Prefix) ([]wirefleet.Peer, error) {
	ps, err := tx.ListPeers(store.PeerQuery{Network: network, NamePrefix: name})
	if err != nil {
		return nil, err
	}
	var out []wirefleet.Peer
	for _, p := range ps {
		if p.Name != name || len(p.Addresses) == 0 {
			continue
		}
		in := true
		for _, a := range p.Addresses {
			in = in && pool.Contains(a)
		}
		if in {
			out = append(out, p)
		}
	}
	return out, nil
}
