package oplog

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
)

type entry struct {
	typ wirefleet.OpType
	key string
	v   any
}

func redactFixture(t *testing.T) ([]wirefleet.Op, wirefleet.Key, wirefleet.Key, wirefleet.TokenHash) {
	priv := wirefleet.Key{1, 2, 3, 4, 5, 6, 7, 8}
	psk := wirefleet.Key{9, 9, 9, 9, 9, 9, 9, 9}
	th := wirefleet.HashTokenSecret("wft_abcd1234_secret")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var vals []entry
	for _, name := range []string{"east", "west"} {
		n := wirefleet.Network{Name: name, ListenPort: 51820, IPv4: netip.MustParsePrefix("198.51.100.1/24"), MTU: 1420, Allocation: wirefleet.AllocSequential, PublicKey: priv.PublicKey(), PrivateKey: wirefleet.NewSecretKey(priv)}
		p := wirefleet.Peer{Network: name, PublicKey: wirefleet.Key{7}, Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.2")}, PresharedKey: wirefleet.NewSecretKey(psk), Enabled: true}
		vals = append(vals,
			entry{wirefleet.OpNetworkPut, wirefleet.NetworkKey(name), wirefleet.NetworkValueOf(n)},
			entry{wirefleet.OpPeerPut, wirefleet.PeerKey(name, p.PublicKey), wirefleet.PeerValueOf(p)})
		// The device re-registers with a new key: same secret rules as peer.put.
		r := p
		r.PublicKey = wirefleet.Key{8}
		vals = append(vals, entry{wirefleet.OpPeerReplace, wirefleet.PeerKey(name, r.PublicKey),
			wirefleet.PeerReplaceValue{PeerValue: wirefleet.PeerValueOf(r), Replaces: p.PublicKey}})
	}
	tok := wirefleet.Token{ID: "abcd1234", Roles: []wirefleet.Role{wirefleet.RoleAdmin}, Hash: th}
	vals = append(vals, entry{wirefleet.OpTokenPut, wirefleet.TokenKey(tok.ID), wirefleet.TokenValueOf(tok)})
	var h Head
	var ops []wirefleet.Op
	for _, v := range vals {
		b, err := Encode(v.v)
		if err != nil {
			t.Fatal(err)
		}
		op := h.Next(now, v.typ, v.key, b)
		ops = append(ops, op)
		h = Head{op.Seq, op.Hash}
	}
	return ops, priv, psk, th
}

func TestFilterByRole(t *testing.T) {
	ops, priv, psk, th := redactFixture(t)
	secrets := map[string]string{"private key": priv.String(), "psk": psk.String(), "token hash": th.String()}
	tests := []struct {
		name string
		aud  Audience
		see  map[string]int // how many ops may show each secret
	}{
		{"admin", Audience{Role: wirefleet.RoleAdmin}, map[string]int{"private key": 2, "psk": 4, "token hash": 1}},
		{"follower", Audience{Role: wirefleet.RoleFollower}, map[string]int{"private key": 2, "psk": 4, "token hash": 1}},
		{"gateway of east", Audience{Role: wirefleet.RoleGateway, Networks: []string{"east"}}, map[string]int{"private key": 1, "psk": 2, "token hash": 0}},
		{"unscoped gateway", Audience{Role: wirefleet.RoleGateway}, map[string]int{"private key": 2, "psk": 4, "token hash": 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out []wirefleet.Op
			for _, op := range ops {
				f, err := Filter(op, tc.aud)
				if err != nil {
					t.Fatal(err)
				}
				// Through the wire format, as a consumer receives it.
				b, _ := json.Marshal(f)
				var back wirefleet.Op
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatal(err)
				}
				out = append(out, back)
			}
			if _, err := Verify(Head{}, out); err != nil {
				t.Fatalf("filtered log does not verify: %v", err)
			}
			for what, secret := range secrets {
				n := 0
				for _, op := range out {
					if strings.Contains(string(op.Value), secret) {
						n++
					}
				}
				if n != tc.see[what] {
					t.Errorf("%s visible in %d ops, want %d", what, n, tc.see[what])
				}
			}
		})
	}
	for _, r := range []wirefleet.Role{wirefleet.RoleViewer, wirefleet.RoleOperator, wirefleet.RoleRegistrar, ""} {
		if _, err := Filter(ops[0], Audience{Role: r}); !wirefleet.IsKind(err, wirefleet.KindForbidden) {
			t.Errorf("role %q: %v, want forbidden", r, err)
		}
	}
}

func TestFilterSnapshot(t *testing.T) {
	priv, psk := wirefleet.Key{1}, wirefleet.Key{2}
	snap := wirefleet.Snapshot{
		Seq: 5,
		Networks: []wirefleet.NetworkValue{
			{Network: wirefleet.Network{Name: "east"}, PrivateKey: priv},
			{Network: wirefleet.Network{Name: "west"}, PrivateKey: priv},
		},
		Peers: []wirefleet.PeerValue{
			{Peer: wirefleet.Peer{Network: "east"}, PresharedKey: &psk},
			{Peer: wirefleet.Peer{Network: "west"}, PresharedKey: &psk},
		},
		Tokens: []wirefleet.TokenValue{{Token: wirefleet.Token{ID: "abcd1234"}, Hash: wirefleet.TokenHash{3}}},
	}
	got, err := FilterSnapshot(snap, Audience{Role: wirefleet.RoleGateway, Networks: []string{"east"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Networks[0].PrivateKey != priv || !got.Networks[1].PrivateKey.IsZero() ||
		got.Peers[0].PresharedKey == nil || got.Peers[1].PresharedKey != nil || len(got.Tokens) != 0 || got.Seq != 5 {
		t.Errorf("gateway snapshot = %+v", got)
	}
	if snap.Networks[1].PrivateKey != priv || snap.Peers[1].PresharedKey == nil {
		t.Errorf("FilterSnapshot modified its input")
	}
	if full, _ := FilterSnapshot(snap, Audience{Role: wirefleet.RoleFollower}); len(full.Tokens) != 1 {
		t.Errorf("follower lost the tokens")
	}
	if _, err := FilterSnapshot(snap, Audience{Role: wirefleet.RoleViewer}); !wirefleet.IsKind(err, wirefleet.KindForbidden) {
		t.Errorf("viewer: %v", err)
	}
}
