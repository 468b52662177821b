package control_test

import (
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store"
)

// FuzzDecodeCursor: cursors come from clients; anything that decodes re-encodes to itself
// and names a valid network, everything else is KindInvalid.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(control.EncodeCursor(store.PeerID{Network: "office", PublicKey: wirefleet.Key{1, 2, 3}}))
	f.Add("")
	f.Add("!!!")
	f.Add("b2ZmaWNlLw")
	f.Fuzz(func(t *testing.T, c string) {
		id, err := control.DecodeCursor(c)
		if err != nil {
			if !wirefleet.IsKind(err, wirefleet.KindInvalid) {
				t.Fatalf("DecodeCursor(%q) error kind %s", c, wirefleet.KindOf(err))
			}
			return
		}
		if wirefleet.ValidateNetworkName(id.Network) != nil {
			t.Fatalf("cursor %q decoded to invalid network %q", c, id.Network)
		}
		if control.EncodeCursor(id) != c {
			t.Fatalf("cursor %q does not round-trip", c)
		}
	})
}
