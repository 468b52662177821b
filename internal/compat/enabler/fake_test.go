package enabler

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
)

// fakeService is a tiny in-memory Service for the handler's logic tests: sequential
// allocation from free, peers in a map. The acceptance tests use the real control.Service
// on SQLite instead.
type fakeService struct {
	mu      sync.Mutex
	network wirefleet.Network
	free    []netip.Addr
	peers   map[wirefleet.Key]wirefleet.Peer
	failGet error // returned by GetPeer when set
}

func newFakeService(n wirefleet.Network) *fakeService {
	f := &fakeService{network: n, peers: map[wirefleet.Key]wirefleet.Peer{}}
	p := n.IPv4.Masked()
	for a := p.Addr().Next(); p.Contains(a); a = a.Next() {
		if a != n.IPv4.Addr() && p.Contains(a.Next()) { // not own, not broadcast
			f.free = append(f.free, a)
		}
	}
	return f
}

func (f *fakeService) GetNetwork(_ context.Context, name string) (wirefleet.Network, error) {
	if name != f.network.Name {
		return wirefleet.Network{}, wirefleet.Errorf(wirefleet.KindNotFound, "network %q not found", name)
	}
	return f.network, nil
}

func (f *fakeService) GetPeer(_ context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failGet != nil {
		return wirefleet.Peer{}, f.failGet
	}
	p, ok := f.peers[pub]
	if !ok || network != f.network.Name {
		return wirefleet.Peer{}, wirefleet.Errorf(wirefleet.KindNotFound, "peer %s not found", pub)
	}
	return p, nil
}

func (f *fakeService) ListPeers(_ context.Context, flt control.PeerFilter) (control.PeerPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []wirefleet.Peer
	for _, p := range f.peers {
		if flt.Enabled != nil && p.Enabled != *flt.Enabled {
			continue
		}
		out = append(out, p)
	}
	return control.PeerPage{Peers: out}, nil
}

func (f *fakeService) CreatePeer(_ context.Context, in control.PeerInput) (wirefleet.Peer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.peers[in.PublicKey]; ok {
		return wirefleet.Peer{}, wirefleet.Errorf(wirefleet.KindConflict, "peer exists")
	}
	addrs := in.Addresses
	if len(addrs) == 0 {
		if len(f.free) == 0 {
			return wirefleet.Peer{}, wirefleet.Errorf(wirefleet.KindConflict, "no free address")
		}
		addrs = []netip.Addr{f.free[0]}
		f.free = f.free[1:]
	} else {
		f.free = slices.DeleteFunc(f.free, func(a netip.Addr) bool { return slices.Contains(addrs, a) })
	}
	p := wirefleet.Peer{Network: in.Network, PublicKey: in.PublicKey, Name: in.Name, Addresses: addrs,
		PresharedKey: wirefleet.SecretKeyFrom(in.PresharedKey), Enabled: !in.Disabled}
	f.peers[p.PublicKey] = p
	return p, nil
}

func (f *fakeService) set(pub wirefleet.Key, enabled bool) (wirefleet.Peer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.peers[pub]
	if !ok {
		return p, wirefleet.Errorf(wirefleet.KindNotFound, "peer %s not found", pub)
	}
	p.Enabled = enabled
	f.peers[pub] = p
	return p, nil
}

func (f *fakeService) EnablePeer(_ context.Context, _ string, pub wirefleet.Key) (wirefleet.Peer, error) {
	return f.set(pub, true)
}

func (f *fakeService) DisablePeer(_ context.Context, _ string, pub wirefleet.Key) (wirefleet.Peer, error) {
	return f.set(pub, false)
}

func (f *fakeService) DeletePeer(_ context.Context, _ string, pub wirefleet.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.peers[pub]
	if !ok {
		return wirefleet.Errorf(wirefleet.KindNotFound, "peer %s not found", pub)
	}
	delete(f.peers, pub)
	f.free = append(f.free, p.Addresses...)
	return nil
}

func (f *fakeService) Head(context.Context) (uint64, wirefleet.Hash, error) {
	return 0, wirefleet.Hash{}, nil
}

func (f *fakeService) OpsAfter(context.Context, uint64, int) ([]wirefleet.Op, error) { return nil, nil }

func (f *fakeService) WaitOps(ctx context.Context, _ uint64) error {
	<-ctx.Done()
	return ctx.Err()
}

// failingGateway refuses every change, as a broken device would.
type failingGateway struct{ err error }

func (g failingGateway) SyncPeer(context.Context, wirefleet.Key) error { return g.err }
