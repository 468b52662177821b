package autowg

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// gatedDevice holds every ApplyPeers until release is closed (so registrations pile up
// behind the first write) and refuses the keys in refuse.
type gatedDevice struct {
	*wgdevtest.Memory
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	refuse  map[wirefleet.Key]bool
	mu      sync.Mutex
	writes  []int // peers per write
}

func (d *gatedDevice) ApplyPeers(ctx context.Context, up []wgdev.Peer, rm []wirefleet.Key) error {
	d.once.Do(func() { close(d.entered) })
	<-d.release
	d.mu.Lock()
	d.writes = append(d.writes, len(up))
	d.mu.Unlock()
	for _, p := range up {
		if d.refuse[p.PublicKey] {
			return fmt.Errorf("peer %s refused", p.PublicKey)
		}
	}
	return d.Memory.ApplyPeers(ctx, up, rm)
}

func regPeer(t *testing.T, i int) wirefleet.Peer {
	return wirefleet.Peer{PublicKey: wgdevtest.NewKey(t), Addresses: []netip.Addr{netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})}}
}

// Registrations that arrive during a device write share the next one; each caller gets
// its own answer, and a refused peer fails alone.
func TestBatchApplierGroupsAndAttributes(t *testing.T) {
	peers := make([]wirefleet.Peer, 21)
	for i := range peers {
		peers[i] = regPeer(t, i+1)
	}
	dev := &gatedDevice{Memory: wgdevtest.NewMemory("wfb"), entered: make(chan struct{}), release: make(chan struct{}),
		refuse: map[wirefleet.Key]bool{peers[7].PublicKey: true}}
	a := newBatchApplier(dev)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- a.Run(ctx) }()

	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = a.ApplyRegistration(ctx, peers[0], nil) })
	<-dev.entered // the first write is in flight; the other 20 queue behind it
	for i := 1; i < len(peers); i++ {
		wg.Go(func() { errs[i] = a.ApplyRegistration(ctx, peers[i], nil) })
	}
	for len(a.reqs) < len(peers)-1 {
		time.Sleep(time.Millisecond)
	}
	close(dev.release)
	wg.Wait()

	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Errorf("registration %d: err = %v (only 7 is refused)", i, err)
		}
	}
	var want []wgdev.Peer
	for i, p := range peers {
		if i != 7 {
			want = append(want, wgdev.Peer{PublicKey: p.PublicKey, AllowedIPs: p.AllowedIPs()})
		}
	}
	wgdevtest.WantPeers(t, dev.Memory, want)
	dev.mu.Lock()
	defer dev.mu.Unlock()
	// 1 write in flight, then the 20 queued ones together (refused because of peer 7),
	// then one each to tell which one failed.
	if diff := cmp.Diff(append([]int{1, 20}, slices.Repeat([]int{1}, 20)...), dev.writes); diff != "" {
		t.Errorf("peers per device write (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyRegistration(context.Background(), peers[0], nil); err != errStopped {
		t.Fatalf("after shutdown: %v, want errStopped", err)
	}
}

// A key freed by one registration and taken by another in the same group is applied in
// order, one registration per write.
func TestBatchApplierSameKeyInOrder(t *testing.T) {
	dev := wgdevtest.NewMemory("wfb")
	old, next := regPeer(t, 1), regPeer(t, 2)
	if err := dev.ApplyPeers(context.Background(), []wgdev.Peer{{PublicKey: old.PublicKey, AllowedIPs: old.AllowedIPs()}}, nil); err != nil {
		t.Fatal(err)
	}
	a := newBatchApplier(dev)
	taken := regPeer(t, 3)
	taken.PublicKey = old.PublicKey
	reqs := []*applyReq{
		{peer: wgdev.Peer{PublicKey: next.PublicKey, AllowedIPs: next.AllowedIPs()}, remove: []wirefleet.Key{old.PublicKey}, done: make(chan error, 1)},
		{peer: wgdev.Peer{PublicKey: taken.PublicKey, AllowedIPs: taken.AllowedIPs()}, done: make(chan error, 1)},
	}
	a.apply(context.Background(), reqs)
	for i, r := range reqs {
		if err := <-r.done; err != nil {
			t.Errorf("registration %d: %v", i, err)
		}
	}
	wgdevtest.WantPeers(t, dev, []wgdev.Peer{{PublicKey: next.PublicKey, AllowedIPs: next.AllowedIPs()}, {PublicKey: taken.PublicKey, AllowedIPs: taken.AllowedIPs()}})
}
