package wire

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
)

func FuzzAppendPeerJSONMatchesMarshal(f *testing.F) {
	f.Add("office", "laptop", true, false, int64(1767225600), int64(0), true, uint8(2))
	f.Add("n", "<b>&\"ü\x01", false, true, int64(0), int64(-62135596800), false, uint8(0))
	f.Fuzz(func(t *testing.T, network, name string, enabled, expired bool, created, expires int64, psk bool, naddr uint8) {
		p := wirefleet.Peer{
			Network: network, Name: name, Enabled: enabled, Expired: expired,
			CreatedAt: time.Unix(created, 123456000).UTC(), UpdatedAt: time.Unix(created/2, 0).UTC(),
		}
		p.PublicKey[0], p.PublicKey[31] = byte(created), byte(expires)
		if expires != 0 {
			e := time.Unix(expires, 0).UTC()
			p.ExpiresAt = &e
		}
		if psk {
			p.PresharedKey = wirefleet.NewSecretKey(p.PublicKey)
		}
		for i := range naddr % 4 {
			if i%2 == 0 {
				p.Addresses = append(p.Addresses, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
			} else {
				p.Addresses = append(p.Addresses, netip.MustParseAddr("2001:db8::1"))
			}
		}
		if naddr == 7 {
			p.Addresses = []netip.Addr{}
		}
		want, err := json.Marshal(PeerFrom(p))
		got := AppendPeerJSON(nil, p)
		if err != nil {
			return // json.Marshal refuses (time out of range); ours writes null, fine
		}
		if string(got) != string(want) {
			t.Fatalf("AppendPeerJSON:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkAppendPeerJSON(b *testing.B) {
	p := wirefleet.Peer{Network: "office", Name: "laptop", Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.2")}, CreatedAt: time.Now()}
	var buf []byte
	for i := 0; i < b.N; i++ {
		buf = AppendPeerJSON(buf[:0], p)
	}
}

func BenchmarkMarshalPeer(b *testing.B) {
	p := wirefleet.Peer{Network: "office", Name: "laptop", Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.2")}, CreatedAt: time.Now()}
	for i := 0; i < b.N; i++ {
		_, _ = json.Marshal(PeerFrom(p))
	}
}
