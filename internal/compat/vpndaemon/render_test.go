package vpndaemon

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// peerJSON is the reference rendering of one peer with encoding/json: what appendPeer
// must produce byte for byte, and what the tests decode answers into.
type peerJSON struct {
	PublicKey         string   `json:"public_key"`
	IPNet             []string `json:"ip_net"`
	LastHandshakeTime *string  `json:"last_handshake_time"`
	BytesIn           int64    `json:"bytes_in"`
	BytesOut          int64    `json:"bytes_out"`
}

func renderPeer(p wgdev.PeerStatus) peerJSON {
	out := peerJSON{
		PublicKey: p.PublicKey.String(),
		IPNet:     make([]string, 0, len(p.AllowedIPs)),
		BytesIn:   max(p.RxBytes, 0),
		BytesOut:  max(p.TxBytes, 0),
	}
	for _, a := range p.AllowedIPs {
		out.IPNet = append(out.IPNet, a.String())
	}
	if handshook(p) {
		s := p.LastHandshake.UTC().Format(time.RFC3339)
		out.LastHandshakeTime = &s
	}
	return out
}

func checkAppendPeer(t *testing.T, p wgdev.PeerStatus) {
	t.Helper()
	want, err := json.Marshal(renderPeer(p))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(appendPeer(nil, p))); diff != "" {
		t.Fatalf("appendPeer differs from encoding/json (-want +got):\n%s", diff)
	}
}

func TestAppendPeerMatchesJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fixed := []wgdev.PeerStatus{
		{},
		{LastHandshake: time.Unix(0, 0), RxBytes: -1, TxBytes: math.MaxInt64},
		{LastHandshake: time.Date(2021, 12, 28, 14, 31, 4, 5, time.FixedZone("CET", 3600))},
	}
	for _, p := range fixed {
		checkAppendPeer(t, p)
	}
	for range 2000 {
		var p wgdev.PeerStatus
		for i := range p.PublicKey {
			p.PublicKey[i] = byte(r.Uint32())
		}
		for range r.IntN(4) {
			if r.IntN(2) == 0 {
				a := netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
				p.AllowedIPs = append(p.AllowedIPs, netip.PrefixFrom(a, r.IntN(33)).Masked())
			} else {
				var b [16]byte
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				p.AllowedIPs = append(p.AllowedIPs, netip.PrefixFrom(netip.AddrFrom16(b), r.IntN(129)).Masked())
			}
		}
		if r.IntN(3) > 0 {
			p.LastHandshake = time.Unix(r.Int64N(4e9), r.Int64N(1e9))
		}
		p.RxBytes, p.TxBytes = r.Int64(), r.Int64N(1<<40)
		checkAppendPeer(t, p)
	}
}

func FuzzAppendPeer(f *testing.F) {
	f.Add([]byte{1, 2, 3}, int64(0), int64(0), int64(0), []byte{198, 51, 100, 9}, 32)
	f.Add([]byte{}, int64(1638700000), int64(-5), int64(7), []byte{0x20, 1, 0xd, 0xb8, 15: 1}, 128)
	f.Fuzz(func(t *testing.T, key []byte, hs, rx, tx int64, ip []byte, bits int) {
		var p wgdev.PeerStatus
		copy(p.PublicKey[:], key)
		if hs != 0 {
			p.LastHandshake = time.Unix(hs%(1<<35), 0)
		}
		p.RxBytes, p.TxBytes = rx, tx
		if a, ok := netip.AddrFromSlice(ip); ok {
			if pf, err := a.Prefix(bits & 0xff); err == nil {
				p.AllowedIPs = []netip.Prefix{pf}
			}
		}
		checkAppendPeer(t, p)
	})
}
