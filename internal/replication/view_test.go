package replication

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
)

// TestViewOpByNetwork: every peer op, peer.replace included, belongs to the network in its
// key; a scoped view sees its networks' ops and the others elided, token ops always elided.
func TestViewOpByNetwork(t *testing.T) {
	k := wirefleet.Key{1}
	ops := []wirefleet.Op{
		{Seq: 1, Type: wirefleet.OpNetworkPut, Key: wirefleet.NetworkKey("a")},
		{Seq: 2, Type: wirefleet.OpPeerPut, Key: wirefleet.PeerKey("a", k)},
		{Seq: 3, Type: wirefleet.OpPeerReplace, Key: wirefleet.PeerKey("a", k)},
		{Seq: 4, Type: wirefleet.OpPeerReplace, Key: wirefleet.PeerKey("b", k)},
		{Seq: 5, Type: wirefleet.OpPeerDelete, Key: wirefleet.PeerKey("b", k)},
		{Seq: 6, Type: wirefleet.OpTokenPut, Key: wirefleet.TokenKey("x")},
	}
	tests := []struct {
		name string
		view View
		want []wirefleet.OpType
	}{
		{"full", View{Full: true}, []wirefleet.OpType{wirefleet.OpNetworkPut, wirefleet.OpPeerPut, wirefleet.OpPeerReplace, wirefleet.OpPeerReplace, wirefleet.OpPeerDelete, wirefleet.OpTokenPut}},
		{"scoped to a", View{Networks: []string{"a"}}, []wirefleet.OpType{wirefleet.OpNetworkPut, wirefleet.OpPeerPut, wirefleet.OpPeerReplace, TypeElided, TypeElided, TypeElided}},
		{"scoped to b", View{Networks: []string{"b"}}, []wirefleet.OpType{TypeElided, TypeElided, TypeElided, wirefleet.OpPeerReplace, wirefleet.OpPeerDelete, TypeElided}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []wirefleet.OpType
			for _, op := range ops {
				got = append(got, tc.view.Op(op).Type)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("types (-want +got):\n%s", diff)
			}
		})
	}
}
