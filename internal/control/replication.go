package control

import (
	"context"
	"strconv"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/store"
)

// ImportInput is a network with its peers, imported in one transaction (wirefleet network
// import). Peers' Network fields are ignored; each peer's addresses are static if given
// (as in a wg-quick file), allocated otherwise.
type ImportInput struct {
	Network NetworkInput
	Peers   []PeerInput
}

// ImportNetwork creates the network and all its peers atomically: either everything is
// stored (one network.put and one peer.put op per peer) or nothing is. Errors name the
// failing peer by its position and key.
func (s *Service) ImportNetwork(ctx context.Context, in ImportInput) (wirefleet.Network, error) {
	n, err := s.buildNetwork(in.Network)
	if err != nil {
		return wirefleet.Network{}, err
	}
	now := n.CreatedAt
	peers := make([]wirefleet.Peer, len(in.Peers))
	for i, pin := range in.Peers {
		pin.Network = n.Name
		p, err := s.newPeer(pin, now)
		if err != nil {
			return wirefleet.Network{}, wirefleet.Errorf(wirefleet.KindInvalid, "peer %d (%s): %v", i+1, pin.PublicKey, err)
		}
		peers[i] = p
	}
	err = s.st.Update(ctx, func(tx store.Tx) error {
		s.forgetNetwork(tx, n.Name)
		if err := tx.InsertNetwork(n); err != nil {
			return err
		}
		// Static addresses first, so that allocated ones never take an address a later
		// peer of the file claims.
		for pass := range 2 {
			for i := range peers {
				static := in.Peers[i].Addresses
				if (pass == 0) != (len(static) > 0) {
					continue
				}
				if err := s.addPeer(tx, n, &peers[i], static); err != nil {
					return &wirefleet.Error{Kind: wirefleet.KindOf(err), Message: "peer " + strconv.Itoa(i+1) + " (" + peers[i].PublicKey.String() + "): " + err.Error(), Err: err}
				}
			}
		}
		return nil
	})
	if err != nil {
		return wirefleet.Network{}, err
	}
	return n, nil
}

// Snapshot returns the whole state with the log head it corresponds to, read in one
// consistent transaction. It contains secrets: the replication API filters it by role.
func (s *Service) Snapshot(ctx context.Context) (wirefleet.Snapshot, error) {
	var snap wirefleet.Snapshot
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		seq, h, err := tx.Head()
		if err != nil {
			return err
		}
		snap.Seq, snap.Hash = seq, h
		ns, err := tx.ListNetworks()
		if err != nil {
			return err
		}
		snap.Networks = make([]wirefleet.NetworkValue, len(ns))
		for i, n := range ns {
			snap.Networks[i] = wirefleet.NetworkValueOf(n)
		}
		ps, err := tx.ListPeers(store.PeerQuery{})
		if err != nil {
			return err
		}
		snap.Peers = make([]wirefleet.PeerValue, len(ps))
		for i, p := range ps {
			snap.Peers[i] = wirefleet.PeerValueOf(p)
		}
		ts, err := tx.ListTokens()
		if err != nil {
			return err
		}
		snap.Tokens = make([]wirefleet.TokenValue, len(ts))
		for i, t := range ts {
			t.LastUsedAt = nil // bookkeeping, not replicated state
			snap.Tokens[i] = wirefleet.TokenValueOf(t)
		}
		return nil
	})
	return snap, err
}

// Head returns the log's last seq and hash.
func (s *Service) Head(ctx context.Context) (uint64, wirefleet.Hash, error) {
	var seq uint64
	var h wirefleet.Hash
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		seq, h, err = tx.Head()
		return err
	})
	return seq, h, err
}

// Op returns the op at seq (KindNotFound if absent), e.g. to compare a consumer's hash.
func (s *Service) Op(ctx context.Context, seq uint64) (wirefleet.Op, error) {
	var op wirefleet.Op
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		op, err = tx.Op(seq)
		return err
	})
	return op, err
}

// OpsAfter returns up to limit ops after seq (limit 0 = all).
func (s *Service) OpsAfter(ctx context.Context, after uint64, limit int) ([]wirefleet.Op, error) {
	var ops []wirefleet.Op
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		ops, err = tx.OpsAfter(after, limit)
		return err
	})
	return ops, err
}

// WaitOps blocks until an op after seq is committed or ctx is done (streaming followers).
func (s *Service) WaitOps(ctx context.Context, after uint64) error { return s.st.WaitOps(ctx, after) }

// LogBase returns where the stored log starts (see store.ReadTx.LogBase): a consumer asking
// for ops after a seq below it must reload a snapshot ("compacted").
func (s *Service) LogBase(ctx context.Context) (uint64, wirefleet.Hash, error) {
	var seq uint64
	var h wirefleet.Hash
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		seq, h, err = tx.LogBase()
		return err
	})
	return seq, h, err
}

// CompactLog drops the ops up to and including seq (local; no op is logged).
func (s *Service) CompactLog(ctx context.Context, through uint64) error {
	return s.st.Update(ctx, func(tx store.Tx) error { return tx.CompactLog(through) })
}

// ApplyOps applies ops received from a primary, in order, in one transaction (a read
// replica, `wirefleet server --follow`). On any error nothing is applied: KindConflict means
// a gap or a diverged history, and the follower should reload a snapshot.
func (s *Service) ApplyOps(ctx context.Context, ops []wirefleet.Op) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		s.forgetCaches(tx)
		for _, op := range ops {
			if err := tx.ApplyOp(op); err != nil {
				return err
			}
		}
		return nil
	})
}

// LoadSnapshot replaces the whole state with snap (a replica's start or reload).
func (s *Service) LoadSnapshot(ctx context.Context, snap wirefleet.Snapshot) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		s.forgetCaches(tx)
		return tx.ResetToSnapshot(snap)
	})
}

// forgetCaches drops every writer-side cache now and again on rollback: replicated changes
// bypass the use cases that keep them in step.
func (s *Service) forgetCaches(tx store.Tx) {
	clear(s.pools)
	clear(s.nets)
	tx.AfterRollback(func() {
		clear(s.pools)
		clear(s.nets)
	})
}
