package control_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/oplog"
)

func TestListPeersPagination(t *testing.T) {
	e := newEnv(t)
	mustNetwork(t, e, dual("a"))
	mustNetwork(t, e, dual("b"))
	for i := range 25 {
		net := "a"
		if i%2 == 1 {
			net = "b"
		}
		name := "laptop"
		if i%3 == 0 {
			name = "phone"
		}
		if _, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: net, PublicKey: key(i + 1), Name: name, Disabled: i%4 == 0}); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	tests := []struct {
		name   string
		filter control.PeerFilter
		want   int
	}{
		{"all", control.PeerFilter{}, 25},
		{"network a", control.PeerFilter{Network: "a"}, 13},
		{"enabled", control.PeerFilter{Enabled: &yes}, 18},
		{"phones in b", control.PeerFilter{Network: "b", NamePrefix: "ph"}, 4},
		{"expired", control.PeerFilter{Expired: &yes}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.filter
			f.Limit = 4
			seen := map[string]bool{}
			pages := 0
			for {
				page, err := e.svc.ListPeers(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, p := range page.Peers {
					k := p.Network + p.PublicKey.String()
					if seen[k] {
						t.Fatalf("peer %s listed twice", k)
					}
					seen[k] = true
				}
				if page.NextCursor == "" {
					break
				}
				f.Cursor = page.NextCursor
			}
			if len(seen) != tc.want {
				t.Errorf("%d peers, want %d", len(seen), tc.want)
			}
			if want := max(1, (tc.want+3)/4); pages != want && pages != want+1 {
				t.Errorf("%d pages for %d peers of 4", pages, tc.want)
			}
		})
	}
	_, err := e.svc.ListPeers(ctx, control.PeerFilter{Cursor: "!!!"})
	wantKind(t, err, wirefleet.KindInvalid)
	_, err = e.svc.ListPeers(ctx, control.PeerFilter{Limit: control.MaxPageSize + 1})
	wantKind(t, err, wirefleet.KindInvalid)
	_, err = e.svc.ListPeers(ctx, control.PeerFilter{Network: "zzz"})
	wantKind(t, err, wirefleet.KindNotFound)
}

func TestPeerStateAndExpiry(t *testing.T) {
	e := newEnv(t)
	mustNetwork(t, e, dual("net"))
	in1h := e.clock.Now().Add(time.Hour)
	p, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "net", PublicKey: key(1), Name: "phone", ExpiresAt: &in1h})
	if err != nil {
		t.Fatal(err)
	}
	never, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "net", PublicKey: key(2)})
	if err != nil {
		t.Fatal(err)
	}
	if never.ExpiresAt != nil {
		t.Fatalf("a peer without expiry has expires_at %v; want nil (never the zero time)", never.ExpiresAt)
	}
	if p, err = e.svc.DisablePeer(ctx, "net", p.PublicKey); err != nil || p.Enabled || p.Active() {
		t.Fatalf("DisablePeer = %+v, %v", p, err)
	}
	if p, err = e.svc.EnablePeer(ctx, "net", p.PublicKey); err != nil || !p.Active() {
		t.Fatalf("EnablePeer = %+v, %v", p, err)
	}
	if n, err := e.svc.ExpirePeers(ctx); err != nil || n != 0 {
		t.Fatalf("ExpirePeers before expiry = %d, %v", n, err)
	}
	head, _, _ := e.svc.Head(ctx)
	e.clock.Advance(2 * time.Hour)
	if n, err := e.svc.ExpirePeers(ctx); err != nil || n != 1 {
		t.Fatalf("ExpirePeers = %d, %v; want 1", n, err)
	}
	got, err := e.svc.GetPeer(ctx, "net", p.PublicKey)
	if err != nil || !got.Expired || got.Active() || !got.Enabled {
		t.Fatalf("after expiry: %+v, %v (want the record kept, expired, inactive)", got, err)
	}
	// The expiry is an op, so gateways remove the peer.
	ops, err := e.svc.OpsAfter(ctx, head, 0)
	if err != nil || len(ops) != 1 || ops[0].Type != wirefleet.OpPeerPut {
		t.Fatalf("ops after expiry = %v, %v; want one peer.put", ops, err)
	}
	var v wirefleet.PeerValue
	if err := json.Unmarshal(ops[0].Value, &v); err != nil || !v.Expired {
		t.Fatalf("expiry op value %s does not mark the peer expired", ops[0].Value)
	}
	if n, _ := e.svc.ExpirePeers(ctx); n != 0 {
		t.Errorf("second sweep expired %d again", n)
	}
	// A future expiry revives; clearing removes it.
	later := e.clock.Now().Add(time.Hour)
	if got, err = e.svc.SetPeerExpiry(ctx, "net", p.PublicKey, &later); err != nil || got.Expired || !got.Active() {
		t.Fatalf("SetPeerExpiry(future) = %+v, %v", got, err)
	}
	if got, err = e.svc.SetPeerExpiry(ctx, "net", p.PublicKey, nil); err != nil || got.ExpiresAt != nil {
		t.Fatalf("SetPeerExpiry(nil) = %+v, %v", got, err)
	}
	past := e.clock.Now().Add(-time.Minute)
	if got, err = e.svc.SetPeerExpiry(ctx, "net", p.PublicKey, &past); err != nil || !got.Expired {
		t.Fatalf("SetPeerExpiry(past) = %+v, %v", got, err)
	}
	name := "tablet"
	psk := wirefleet.Key{7}
	if got, err = e.svc.UpdatePeer(ctx, "net", p.PublicKey, control.PeerUpdate{Name: &name, PresharedKey: &psk}); err != nil || got.Name != "tablet" || got.PresharedKey.Reveal() != psk {
		t.Fatalf("UpdatePeer = %+v, %v", got, err)
	}
	bad := strings.Repeat("x", 65)
	_, err = e.svc.UpdatePeer(ctx, "net", p.PublicKey, control.PeerUpdate{Name: &bad})
	wantKind(t, err, wirefleet.KindInvalid)
	_, err = e.svc.EnablePeer(ctx, "net", key(99))
	wantKind(t, err, wirefleet.KindNotFound)
	wantKind(t, e.svc.DeletePeer(ctx, "net", key(99)), wirefleet.KindNotFound)
}

func TestCreateClient(t *testing.T) {
	e := newEnv(t)
	mustNetwork(t, e, dual("net"))
	c, err := e.svc.CreateClient(ctx, control.ClientInput{Network: "net", Name: "phone", PresharedKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.PrivateKey.Reveal().PublicKey() != c.Peer.PublicKey {
		t.Fatalf("client private key does not match the stored public key")
	}
	if !c.PresharedKey.IsSet() || c.Network.Name != "net" || len(c.Peer.Addresses) != 2 {
		t.Fatalf("client = %+v", c)
	}
	// The client's private key is nowhere in the database file (WAL included) or the log.
	secret := c.PrivateKey.Reveal().String()
	for _, f := range []string{e.path, e.path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) || strings.Contains(string(b), string(c.PrivateKey.Reveal().String()[:20])) {
			t.Errorf("%s contains the client private key", f)
		}
	}
	snap, err := e.svc.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(snap)
	if strings.Contains(string(b), secret) {
		t.Errorf("snapshot contains the client private key")
	}
	_, err = e.svc.CreateClient(ctx, control.ClientInput{Network: "missing"})
	wantKind(t, err, wirefleet.KindNotFound)
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	tok, secret, err := e.svc.CreateToken(ctx, control.TokenInput{Name: "ci", Roles: []wirefleet.Role{wirefleet.RoleOperator}, Networks: []string{"net"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, wirefleet.TokenSecretPrefix+tok.ID+"_") {
		t.Fatalf("secret %q does not carry the id %s", secret, tok.ID)
	}
	got, err := e.svc.Authenticate(ctx, secret)
	if err != nil || got.ID != tok.ID || got.LastUsedAt == nil {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "nope", secret + "x", secret[:len(secret)-1] + "A", wirefleet.TokenSecretPrefix + "zzzzzzzz_abc"} {
		_, err := e.svc.Authenticate(ctx, bad)
		wantKind(t, err, wirefleet.KindUnauthorized)
	}
	// The secret is in neither the database nor the log; last-used is flushed in one write.
	if err := e.svc.FlushTokenUsage(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.ListTokens(ctx)
	if err != nil || len(list) != 1 || list[0].LastUsedAt == nil {
		t.Fatalf("ListTokens = %+v, %v", list, err)
	}
	b, _ := os.ReadFile(e.path + "-wal")
	b2, _ := os.ReadFile(e.path)
	if strings.Contains(string(b)+string(b2), secret) {
		t.Errorf("the database contains a token secret")
	}
	ops, _ := e.svc.OpsAfter(ctx, 0, 0)
	if len(ops) != 1 || ops[0].Type != wirefleet.OpTokenPut {
		t.Fatalf("ops = %v; want one token.put (usage is not replicated)", ops)
	}
	// Expiry.
	soon := e.clock.Now().Add(time.Minute)
	_, s2, err := e.svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleViewer}, ExpiresAt: &soon})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, s2); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	_, err = e.svc.Authenticate(ctx, s2)
	wantKind(t, err, wirefleet.KindUnauthorized)
	// Invalid input.
	_, _, err = e.svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{"root"}})
	wantKind(t, err, wirefleet.KindInvalid)
	_, _, err = e.svc.CreateToken(ctx, control.TokenInput{})
	wantKind(t, err, wirefleet.KindInvalid)
	past := e.clock.Now().Add(-time.Second)
	_, _, err = e.svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}, ExpiresAt: &past})
	wantKind(t, err, wirefleet.KindInvalid)
	// Revocation is immediate.
	if err := e.svc.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Authenticate(ctx, secret)
	wantKind(t, err, wirefleet.KindUnauthorized)
	wantKind(t, e.svc.RevokeToken(ctx, tok.ID), wirefleet.KindNotFound)
}

func TestImportNetwork(t *testing.T) {
	e := newEnv(t)
	priv, _ := wirefleet.GeneratePrivateKey()
	in := control.ImportInput{Network: control.NetworkInput{Name: "wg0", IPv4: netip.MustParsePrefix("198.18.0.1/16"), PrivateKey: &priv}}
	for i := range 2000 {
		p := control.PeerInput{PublicKey: key(i + 1)}
		if i%2 == 0 { // static, as in a wg-quick file; the others are allocated around them
			p.Addresses = []netip.Addr{netip.AddrFrom4([4]byte{198, 18, byte((i + 2) >> 8), byte(i + 2)})}
		}
		in.Peers = append(in.Peers, p)
	}
	n, err := e.svc.ImportNetwork(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if n.PublicKey != priv.PublicKey() {
		t.Errorf("import did not keep the network key")
	}
	page, err := e.svc.ListPeers(ctx, control.PeerFilter{Network: "wg0", Limit: control.MaxPageSize})
	if err != nil || len(page.Peers) != 2000 {
		t.Fatalf("imported %d peers, %v", len(page.Peers), err)
	}
	seen := map[netip.Addr]bool{}
	for _, p := range page.Peers {
		if seen[p.Addresses[0]] {
			t.Fatalf("address %s twice", p.Addresses[0])
		}
		seen[p.Addresses[0]] = true
	}
	ops, _ := e.svc.OpsAfter(ctx, 0, 0)
	if len(ops) != 2001 {
		t.Errorf("%d ops, want 2001 (network + one per peer)", len(ops))
	}
	// A conflict anywhere imports nothing.
	bad := in
	bad.Network.Name = "wg1"
	bad.Peers = append([]control.PeerInput(nil), in.Peers[:10]...)
	bad.Peers = append(bad.Peers, control.PeerInput{PublicKey: key(5000), Addresses: in.Peers[0].Addresses})
	_, err = e.svc.ImportNetwork(ctx, bad)
	wantKind(t, err, wirefleet.KindConflict)
	if !strings.Contains(err.Error(), "peer 11") {
		t.Errorf("error %q does not name the failing peer", err)
	}
	_, err = e.svc.GetNetwork(ctx, "wg1")
	wantKind(t, err, wirefleet.KindNotFound)
	if after, _ := e.svc.OpsAfter(ctx, 0, 0); len(after) != 2001 {
		t.Errorf("a failed import appended ops")
	}
}

func TestSnapshotMatchesLog(t *testing.T) {
	e := newEnv(t)
	mustNetwork(t, e, dual("net"))
	for i := range 10 {
		if _, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "net", PublicKey: key(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.DeletePeer(ctx, "net", key(3)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleGateway}}); err != nil {
		t.Fatal(err)
	}
	snap, err := e.svc.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seq, h, _ := e.svc.Head(ctx)
	if snap.Seq != seq || snap.Hash != h || seq != 13 {
		t.Fatalf("snapshot at %d %s, head %d %s", snap.Seq, snap.Hash, seq, h)
	}
	// Replaying the log gives the snapshot's state.
	ops, _ := e.svc.OpsAfter(ctx, 0, 0)
	peers := map[string]wirefleet.PeerValue{}
	for _, op := range ops {
		switch op.Type {
		case wirefleet.OpPeerPut:
			var v wirefleet.PeerValue
			if err := json.Unmarshal(op.Value, &v); err != nil {
				t.Fatal(err)
			}
			peers[op.Key] = v
		case wirefleet.OpPeerDelete:
			delete(peers, op.Key)
		}
	}
	if len(peers) != len(snap.Peers) {
		t.Fatalf("replay has %d peers, snapshot %d", len(peers), len(snap.Peers))
	}
	for _, p := range snap.Peers {
		r, ok := peers[wirefleet.PeerKey(p.Network, p.PublicKey)]
		if !ok {
			t.Fatalf("snapshot peer %s not in replay", p.PublicKey)
		}
		if diff := cmp.Diff(r.Addresses, p.Addresses, cmpAddr); diff != "" {
			t.Errorf("peer %s differs:\n%s", p.PublicKey, diff)
		}
	}
	if len(snap.Networks) != 1 || snap.Networks[0].PrivateKey.IsZero() || len(snap.Tokens) != 1 || snap.Tokens[0].Hash == (wirefleet.TokenHash{}) {
		t.Errorf("snapshot lacks the network key or token hash for privileged consumers")
	}
	if _, err := oplog.Verify(oplog.Head{}, ops); err != nil {
		t.Fatal(err)
	}
}

func TestFollowerReplicates(t *testing.T) {
	primary, replica := newEnv(t), newEnv(t)
	mustNetwork(t, primary, dual("net"))
	for i := range 5 {
		if _, err := primary.svc.CreatePeer(ctx, control.PeerInput{Network: "net", PublicKey: key(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := primary.svc.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.svc.LoadSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if err := primary.svc.DeletePeer(ctx, "net", key(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.svc.CreatePeer(ctx, control.PeerInput{Network: "net", PublicKey: key(9)}); err != nil {
		t.Fatal(err)
	}
	tail, err := primary.svc.OpsAfter(ctx, snap.Seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.svc.ApplyOps(ctx, tail); err != nil {
		t.Fatal(err)
	}
	// Applying again is a gap/divergence: refused as a whole.
	wantKind(t, replica.svc.ApplyOps(ctx, tail), wirefleet.KindConflict)
	want, _ := primary.svc.Snapshot(ctx)
	got, _ := replica.svc.Snapshot(ctx)
	if diff := cmp.Diff(want, got, cmpDomain...); diff != "" {
		t.Errorf("replica snapshot (-primary +replica):\n%s", diff)
	}
	base, _, _ := replica.svc.LogBase(ctx)
	if base != snap.Seq {
		t.Errorf("replica log base %d, want %d", base, snap.Seq)
	}
	if err := primary.svc.CompactLog(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if base, _, _ := primary.svc.LogBase(ctx); base != 3 {
		t.Errorf("primary log base %d after compaction, want 3", base)
	}
}
