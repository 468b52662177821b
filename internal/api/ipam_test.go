package api

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
)

func newKey(t *testing.T) wirefleet.Key {
	t.Helper()
	k, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

// TestIPAMOverHTTP: a /29 network created through the API holds exactly five peers
// (.2–.6: never the network address .0, the network's own .1 or the broadcast .7); the
// sixth create is a 409 problem+json of kind conflict saying the pool is exhausted and
// what to do; a taken static address is a 409, an address outside the prefix a 400.
func TestIPAMOverHTTP(t *testing.T) {
	e := newEnv(t, Config{})
	e.do("POST", "/api/v1/networks", e.admin, wire.NetworkCreate{Name: "tiny", IPv4: "198.51.100.1/29"}).want(t, 201, nil)
	peers := "/api/v1/networks/tiny/peers"

	var got []string
	for range 5 {
		var p wire.Peer
		e.do("POST", peers, e.admin, wire.PeerCreate{PublicKey: newKey(t)}).want(t, 201, &p)
		for _, a := range p.Addresses {
			got = append(got, a.String())
		}
	}
	want := []string{"198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("allocated addresses (-want +got):\n%s", diff)
	}

	r := e.do("POST", peers, e.admin, wire.PeerCreate{PublicKey: newKey(t)})
	if r.status != 409 {
		t.Fatalf("create in a full /29: status %d, want 409: %s", r.status, r.body)
	}
	pb := r.problem(t)
	if pb.Kind != string(wirefleet.KindConflict) || !strings.Contains(pb.Detail, "no free address") || !strings.Contains(pb.Detail, "198.51.100.0/29") || !strings.Contains(pb.Detail, "larger prefix") {
		t.Errorf("exhaustion problem %+v: want kind conflict, naming the prefix and what to do", pb)
	}
	// Nothing was stored by the failed create; freeing one address makes room again.
	var list wire.PeerList
	e.do("GET", peers, e.admin, nil).want(t, 200, &list)
	if len(list.Items) != 5 {
		t.Errorf("%d peers after the failed create, want 5", len(list.Items))
	}
	e.do("DELETE", peers+"/"+urlKey(list.Items[2].PublicKey), e.admin, nil).want(t, 204, nil)
	var again wire.Peer
	e.do("POST", peers, e.admin, wire.PeerCreate{PublicKey: newKey(t)}).want(t, 201, &again)
	if len(again.Addresses) != 1 || again.Addresses[0] != list.Items[2].Addresses[0] {
		t.Errorf("after a delete the new peer got %v, want the freed %v", again.Addresses, list.Items[2].Addresses)
	}

	// Static addresses in a network with room.
	e.do("POST", "/api/v1/networks", e.admin, wire.NetworkCreate{Name: "small", IPv4: "198.51.100.9/29"}).want(t, 201, nil)
	small := "/api/v1/networks/small/peers"
	e.do("POST", small, e.admin, wire.PeerCreate{PublicKey: newKey(t), Addresses: []string{"198.51.100.12"}}).want(t, 201, nil)
	tests := []struct {
		name   string
		addr   string
		status int
		kind   wirefleet.Kind
		detail string
	}{
		{"taken by a peer", "198.51.100.12", 409, wirefleet.KindConflict, "198.51.100.12"},
		{"the network's own", "198.51.100.9", 409, wirefleet.KindConflict, "198.51.100.9"},
		{"outside the prefix", "198.51.100.20", 400, wirefleet.KindInvalid, "198.51.100.20"},
		{"another range", "203.0.113.5", 400, wirefleet.KindInvalid, "203.0.113.5"},
		{"network address", "198.51.100.8", 400, wirefleet.KindInvalid, "198.51.100.8"},
		{"broadcast", "198.51.100.15", 400, wirefleet.KindInvalid, "198.51.100.15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", small, e.admin, wire.PeerCreate{PublicKey: newKey(t), Addresses: []string{tt.addr}})
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if pb := r.problem(t); pb.Kind != string(tt.kind) || !strings.Contains(pb.Detail, tt.detail) {
				t.Errorf("problem %+v: want kind %s naming %s", pb, tt.kind, tt.detail)
			}
		})
	}
}
