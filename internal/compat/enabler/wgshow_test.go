package enabler

import (
	"flag"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), []byte(got), *update)
}

func showFixture() (wgdev.Info, []wgdev.PeerStatus, time.Time) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	info := wgdev.Info{Name: "wg0", PublicKey: serverPriv.PublicKey(), ListenPort: 51820}
	psk := pskA
	peers := []wgdev.PeerStatus{
		{Peer: wgdev.Peer{PublicKey: keyB, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.3/32")}, PersistentKeepalive: 25 * time.Second}},
		{Peer: wgdev.Peer{PublicKey: keyA, PresharedKey: &psk, Endpoint: netip.MustParseAddrPort("[::ffff:203.0.113.7]:40000"),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/32"), netip.MustParsePrefix("2001:db8::2/128")}, PersistentKeepalive: 25 * time.Second},
			LastHandshake: now.Add(-(time.Hour + 2*time.Minute + 1*time.Second)), RxBytes: 1536, TxBytes: 3 << 20},
		{Peer: wgdev.Peer{PublicKey: wirefleet.MustParseKey("YDhkBXyym+L255TwBGHWXXWcaMqaGqlJLLyc4XyyE18="), Endpoint: netip.MustParseAddrPort("[2001:db8::9]:51820")},
			LastHandshake: now.Add(-400 * 24 * time.Hour), RxBytes: 12, TxBytes: 0},
	}
	return info, peers, now
}

func TestRenderShowGolden(t *testing.T) {
	info, peers, now := showFixture()
	golden(t, "show.txt", RenderShow(info, peers, now))
	golden(t, "show_empty.txt", RenderShow(wgdev.Info{Name: "wg0", PublicKey: serverPriv.PublicKey(), ListenPort: 51820}, nil, now))
}

func TestRenderShowConfGolden(t *testing.T) {
	info, peers, _ := showFixture()
	got := RenderShowConf(info, peers)
	golden(t, "showconf.txt", got)
	for _, secret := range []string{serverPriv.String(), pskA.String(), "PrivateKey", "PresharedKey"} {
		if strings.Contains(got, secret) {
			t.Errorf("/info/conf leaks %q", secret)
		}
	}
}

func TestPrettyTime(t *testing.T) {
	tests := []struct {
		secs uint64
		want string
	}{
		{1, "1 second"}, {25, "25 seconds"}, {60, "1 minute"}, {3661, "1 hour, 1 minute, 1 second"},
		{86400*2 + 5, "2 days, 5 seconds"}, {365*86400 + 86400, "1 year, 1 day"},
	}
	for _, tt := range tests {
		if got := prettyTime(tt.secs); got != tt.want {
			t.Errorf("prettyTime(%d) = %q, want %q", tt.secs, got, tt.want)
		}
	}
	now := time.Unix(1000, 0)
	if got := ago(time.Unix(1000, 5), now); got != "Now" {
		t.Errorf("ago(same second) = %q", got)
	}
	for b, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1536: "1.50 KiB", 5 << 30: "5.00 GiB", 3 << 40: "3.00 TiB"} {
		if got := bytesText(b); got != want {
			t.Errorf("bytesText(%d) = %q, want %q", b, got, want)
		}
	}
}
