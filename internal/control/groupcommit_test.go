package control_test

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/wirefleet/wirefleet/internal/control"
)

// TestGroupCommitSharesFsync: concurrent creates through the service layer on a real
// SQLite file (synchronous=FULL) share transactions, so there are fewer commits (fsyncs)
// than writes. Every create is one Update call; while one batch fsyncs the other 63
// writers queue up, so batching is not a matter of luck: a store committing each call on
// its own would have Batches == Calls exactly, which is what this test rules out.
func TestGroupCommitSharesFsync(t *testing.T) {
	const writers, perWriter = 64, 8
	e := newEnv(t)
	in := dual("gc")
	in.IPv4 = netip.MustParsePrefix("198.18.0.1/16")
	mustNetwork(t, e, in)
	before := e.st.Stats()

	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start // all writers begin together
			for j := range perWriter {
				i := w*perWriter + j + 1
				if _, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "gc", PublicKey: key(i)}); err != nil {
					t.Errorf("create %d: %v", i, err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	after := e.st.Stats()
	calls, commits := after.Calls-before.Calls, after.Batches-before.Batches
	t.Logf("%d creates: %d Update calls in %d commits (%.1f calls/commit)", writers*perWriter, calls, commits, float64(calls)/float64(max(commits, 1)))
	if calls < writers*perWriter {
		t.Fatalf("%d Update calls for %d creates: the counters do not see every write", calls, writers*perWriter)
	}
	if commits == 0 || commits >= calls {
		t.Fatalf("%d commits for %d writes: concurrent writes did not share a transaction", commits, calls)
	}
	// Every acknowledged create is durable and visible.
	page, err := e.svc.ListPeers(ctx, control.PeerFilter{Network: "gc", Limit: control.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Peers) != writers*perWriter {
		t.Errorf("%d peers stored, want %d", len(page.Peers), writers*perWriter)
	}
}
