package userspace_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/userspace"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// open creates a userspace device in ns (a fresh namespace: the host stays clean) and
// checks at cleanup that the interface and the UAPI socket are gone.
func open(t testing.TB, ns *testenv.NetNS, cfg userspace.Config) *userspace.Device {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = testenv.UniqueName("wft")
	}
	cfg.NetNS = ns.Name
	if cfg.Logger == nil {
		cfg.Logger = wgdevtest.Logger(t)
	}
	d, err := userspace.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("userspace.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		sock := userspace.SocketDir + "/" + cfg.Name + ".sock"
		if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s still there after Close (stat: %v)", sock, err)
		}
		if out, err := ns.Command("ip", "link", "show", cfg.Name).CombinedOutput(); err == nil {
			t.Errorf("interface %s still there after Close:\n%s", cfg.Name, out)
		}
	})
	return d
}

func TestConformance(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfu")
	wgdevtest.Run(t, func(t *testing.T) wgdev.Device { return open(t, ns, userspace.Config{}) })
}

func TestOpenConfigures(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfu")
	priv, _ := wirefleet.GeneratePrivateKey()
	addrs := []netip.Prefix{netip.MustParsePrefix("198.18.7.1/24"), netip.MustParsePrefix("fd00:7::1/64")}
	d := open(t, ns, userspace.Config{PrivateKey: priv, ListenPort: 51820, Addresses: addrs, MTU: 1400})
	info, err := d.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.PublicKey != priv.PublicKey() || info.ListenPort != 51820 || info.MTU != 1400 || len(info.Addresses) != 2 || info.Backend != "userspace" {
		t.Fatalf("Info = %+v", info)
	}
	out := ns.Exec(t, "ip", "-o", "link", "show", info.Name)
	if !strings.Contains(out, "UP") {
		t.Errorf("interface not up: %s", out)
	}
	// The UDP socket lives in the device's namespace, not the host's.
	if out := ns.Exec(t, "ss", "-uln"); !strings.Contains(out, ":51820") {
		t.Errorf("no UDP socket on 51820 inside the namespace:\n%s", out)
	}
}

func TestOpenRefusesExistingInterface(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfu")
	name := testenv.UniqueName("wft")
	ns.Exec(t, "ip", "tuntap", "add", "name", name, "mode", "tun")
	_, err := userspace.Open(context.Background(), userspace.Config{Name: name, NetNS: ns.Name})
	if !wirefleet.IsKind(err, wirefleet.KindConflict) || !strings.Contains(err.Error(), "attach") {
		t.Fatalf("Open on an existing interface: got %v, want a conflict suggesting attach", err)
	}
	if _, err := os.Stat(userspace.SocketDir + "/" + name + ".sock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Open left a socket behind")
	}
}

// The stock wg tool sees what ApplyPeers set, and what wg set changes is seen by Peers and
// by the next ApplyPeers (which must then not work from a stale copy).
func TestStockWGInterop(t *testing.T) {
	testenv.Privileged(t, "wg")
	ns := testenv.NewNetNS(t, "wfu")
	d := open(t, ns, userspace.Config{ListenPort: 0})
	info, _ := d.Info(context.Background())
	peers := wgdevtest.MakePeers(t, 1, 3)
	peers[0].Endpoint = netip.MustParseAddrPort("192.0.2.1:51820")
	peers[0].PersistentKeepalive = 25 * time.Second
	if err := d.ApplyPeers(context.Background(), peers, nil); err != nil {
		t.Fatal(err)
	}
	// wg talks to the socket, which is not namespaced: run it from the host.
	out := testenv.Run(t, "wg", "show", info.Name, "dump")
	for _, p := range peers {
		if !strings.Contains(out, p.PublicKey.String()+"\t(none)\t") {
			t.Errorf("wg show dump lacks peer %s:\n%s", p.PublicKey, out)
		}
	}
	if !strings.Contains(out, "192.0.2.1:51820") || !strings.Contains(out, "198.18.0.1/32,2001:db8::1/128") {
		t.Errorf("wg show dump lacks endpoint or allowed IPs:\n%s", out)
	}

	// wg set: move peer 1's allowed IPs and add a new peer.
	extra := wgdevtest.NewKey(t)
	testenv.Run(t, "wg", "set", info.Name, "peer", peers[1].PublicKey.String(), "allowed-ips", "203.0.113.5/32",
		"peer", extra.String(), "allowed-ips", "203.0.113.6/32")
	peers[1].AllowedIPs = []netip.Prefix{netip.MustParsePrefix("203.0.113.5/32")}
	want := append(peers[:3:3], wgdev.Peer{PublicKey: extra, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.6/32")}})
	wgdevtest.WantPeers(t, d, want)

	// An apply after wg set removes the prefix wg set gave, not the one we last set.
	peers[1].AllowedIPs = []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}
	if err := d.ApplyPeers(context.Background(), peers[1:2], nil); err != nil {
		t.Fatal(err)
	}
	want[1] = peers[1]
	wgdevtest.WantPeers(t, d, want)
}

// A prefix given to another peer moves to it (wireguard-go keeps one owner per prefix);
// the old owner's next change must not remove it from the new owner.
func TestPrefixMovesBetweenPeers(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfu")
	d := open(t, ns, userspace.Config{})
	ctx := context.Background()
	a := wgdev.Peer{PublicKey: wgdevtest.NewKey(t), AllowedIPs: []netip.Prefix{wgdevtest.Host(1), wgdevtest.Host(2)}}
	b := wgdev.Peer{PublicKey: wgdevtest.NewKey(t), AllowedIPs: []netip.Prefix{wgdevtest.Host(2)}}
	if err := d.ApplyPeers(ctx, []wgdev.Peer{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	a.AllowedIPs = a.AllowedIPs[:1]
	wgdevtest.WantPeers(t, d, []wgdev.Peer{a, b})
	a.AllowedIPs = []netip.Prefix{wgdevtest.Host(3)} // Host(1) is stale for a; Host(2) is b's
	if err := d.ApplyPeers(ctx, []wgdev.Peer{a}, nil); err != nil {
		t.Fatal(err)
	}
	wgdevtest.WantPeers(t, d, []wgdev.Peer{a, b})
}

// After Close every call fails as unavailable (the gateway maps that to 503), and a second
// Close is harmless.
func TestClosed(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfu")
	d := open(t, ns, userspace.Config{})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.ApplyPeers(ctx, wgdevtest.MakePeers(t, 1, 1), nil); !wirefleet.IsKind(err, wirefleet.KindUnavailable) {
		t.Errorf("ApplyPeers after Close: %v, want KindUnavailable", err)
	}
	if _, err := d.Peers(ctx); !wirefleet.IsKind(err, wirefleet.KindUnavailable) {
		t.Errorf("Peers after Close: %v, want KindUnavailable", err)
	}
	if _, err := d.Info(ctx); !wirefleet.IsKind(err, wirefleet.KindUnavailable) {
		t.Errorf("Info after Close: %v, want KindUnavailable", err)
	}
	select {
	case <-d.Wait():
	case <-time.After(5 * time.Second):
		t.Error("wireguard-go still running after Close")
	}
}

// The production path: no NetNS, the device in the process's own namespace (the gateway
// runs under `ip netns exec` in the end-to-end tests). No addresses, to leave the host's
// routing alone.
func TestCallersNamespace(t *testing.T) {
	testenv.Privileged(t)
	name := testenv.UniqueName("wft")
	d, err := userspace.Open(context.Background(), userspace.Config{Name: name, Logger: wgdevtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		d.Close()
		if out, err := exec.Command("ip", "link", "show", name).CombinedOutput(); err == nil {
			t.Errorf("interface %s still there after Close:\n%s", name, out)
		}
	}()
	peers := wgdevtest.MakePeers(t, 1, 2)
	if err := d.ApplyPeers(context.Background(), peers, nil); err != nil {
		t.Fatal(err)
	}
	wgdevtest.WantPeers(t, d, peers)
	if out := testenv.Run(t, "ip", "-o", "link", "show", name); !strings.Contains(out, "UP") {
		t.Errorf("interface not up: %s", out)
	}
}

// TestBulkApplyKeyListedTwice: a bulk apply (new peers created in parallel before the set
// operation) that lists a new key twice creates it once, as a set operation alone would.
func TestBulkApplyKeyListedTwice(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfu")
	d := open(t, ns, userspace.Config{})
	peers := wgdevtest.MakePeers(t, 1, 200)
	up := append(peers[:len(peers):len(peers)], peers[5])
	if err := d.ApplyPeers(context.Background(), up, nil); err != nil {
		t.Fatalf("ApplyPeers with a key listed twice: %v", err)
	}
	wgdevtest.WantPeers(t, d, peers)
}
