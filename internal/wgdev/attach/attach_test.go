package attach_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/attach"
	"github.com/wirefleet/wirefleet/internal/wgdev/userspace"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// The prefixes the conformance suite uses, so that all its peers are managed.
var managed = []netip.Prefix{
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("203.0.113.0/24"),
}

// staticPeer is a wg-quick style peer outside the managed prefixes: attach must neither
// show nor touch it.
const staticAllowed = "192.0.2.0/28"

// wireguardGo starts a stock wireguard-go with a key, a port and one static peer, as
// wg-quick would have left it, and returns the static peer's key.
func wireguardGo(t *testing.T, ns *testenv.NetNS) (name string, static wirefleet.Key) {
	name = testenv.UniqueName("wfa")
	wgdevtest.StartWireguardGo(t, ns, name)
	static = wgdevtest.NewKey(t)
	keyFile := t.TempDir() + "/key"
	priv, _ := wirefleet.GeneratePrivateKey()
	testenv.Run(t, "sh", "-c", "umask 077; echo "+priv.String()+" > "+keyFile)
	testenv.Run(t, "wg", "set", name, "private-key", keyFile, "listen-port", "0",
		"peer", static.String(), "allowed-ips", staticAllowed, "endpoint", "192.0.2.9:51820")
	return name, static
}

func open(t *testing.T, ns *testenv.NetNS, name string) *attach.Device {
	t.Helper()
	d, err := attach.Open(context.Background(), attach.Config{Name: name, ManagedPrefixes: managed, NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
	if err != nil {
		t.Fatalf("attach.Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// staticIntact checks with the stock tool that the static peer is there, unchanged.
func staticIntact(t *testing.T, name string, static wirefleet.Key) {
	t.Helper()
	out := testenv.Run(t, "wg", "show", name, "allowed-ips")
	if !strings.Contains(out, static.String()+"\t"+staticAllowed) {
		t.Errorf("static peer %s changed or gone:\n%s", static, out)
	}
}

func TestConformanceOnWireguardGo(t *testing.T) {
	testenv.Privileged(t, "wireguard-go", "wg")
	ns := testenv.NewNetNS(t, "wfa")
	wgdevtest.Run(t, func(t *testing.T) wgdev.Device {
		name, static := wireguardGo(t, ns)
		d := open(t, ns, name)
		t.Cleanup(func() { staticIntact(t, name, static) })
		return d
	})
}

// Attach works on a device made by our own userspace backend too (per-prefix removal over
// its UAPI socket).
func TestConformanceOnUserspaceBackend(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfa")
	wgdevtest.Run(t, func(t *testing.T) wgdev.Device {
		u, err := userspace.Open(context.Background(), userspace.Config{Name: testenv.UniqueName("wfa"), NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		info, _ := u.Info(context.Background())
		return open(t, ns, info.Name)
	})
}

func TestOwnership(t *testing.T) {
	testenv.Privileged(t, "wireguard-go", "wg")
	ns := testenv.NewNetNS(t, "wfa")
	name, static := wireguardGo(t, ns)
	d := open(t, ns, name)
	ctx := context.Background()

	wgdevtest.WantPeers(t, d, nil) // the static peer is not ours: not listed

	outside := wgdev.Peer{PublicKey: wgdevtest.NewKey(t), AllowedIPs: []netip.Prefix{wgdevtest.Host(1), netip.MustParsePrefix("192.0.2.100/32")}}
	if err := d.ApplyPeers(ctx, []wgdev.Peer{outside}, nil); !wirefleet.IsKind(err, wirefleet.KindInvalid) {
		t.Errorf("peer with an allowed IP outside the managed prefixes: got %v, want KindInvalid", err)
	}
	hijack := wgdev.Peer{PublicKey: static, AllowedIPs: []netip.Prefix{wgdevtest.Host(2)}}
	if err := d.ApplyPeers(ctx, []wgdev.Peer{hijack}, nil); !wirefleet.IsKind(err, wirefleet.KindConflict) {
		t.Errorf("upsert of the static peer's key: got %v, want KindConflict", err)
	}
	if err := d.ApplyPeers(ctx, nil, []wirefleet.Key{static}); err != nil {
		t.Errorf("remove of the static peer's key: %v, want a no-op", err)
	}
	staticIntact(t, name, static)

	// A peer added by someone else inside the managed prefixes is ours: listed, removable.
	other := wgdevtest.NewKey(t)
	testenv.Run(t, "wg", "set", name, "peer", other.String(), "allowed-ips", "198.18.9.9/32")
	wgdevtest.WantPeers(t, d, []wgdev.Peer{{PublicKey: other, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.9.9/32")}}})
	if err := d.ApplyPeers(ctx, nil, []wirefleet.Key{other}); err != nil {
		t.Fatal(err)
	}
	wgdevtest.WantPeers(t, d, nil)

	// Peers and the interface survive Close.
	mine := wgdevtest.MakePeers(t, 10, 2)
	if err := d.ApplyPeers(ctx, mine, nil); err != nil {
		t.Fatal(err)
	}
	dump := func() string { // sorted: wireguard-go lists peers in map order
		lines := strings.Split(testenv.Run(t, "wg", "show", name, "dump"), "\n")
		slices.Sort(lines)
		return strings.Join(lines, "\n")
	}
	before := dump()
	d.Close()
	if after := dump(); after != before {
		t.Errorf("Close changed the device:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	d2 := open(t, ns, name)
	wgdevtest.WantPeers(t, d2, mine)
}

func TestOpenErrors(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfa")
	_, err := attach.Open(context.Background(), attach.Config{Name: "wfnothere0", ManagedPrefixes: managed, NetNS: ns.Name})
	if !wirefleet.IsKind(err, wirefleet.KindNotFound) || !strings.Contains(err.Error(), "wg-quick up") {
		t.Errorf("missing interface: got %v, want KindNotFound telling what to do", err)
	}
	_, err = attach.Open(context.Background(), attach.Config{Name: "lo", NetNS: ns.Name})
	if !wirefleet.IsKind(err, wirefleet.KindInvalid) {
		t.Errorf("no managed prefixes: got %v, want KindInvalid", err)
	}
	_, err = attach.Open(context.Background(), attach.Config{Name: "lo", ManagedPrefixes: managed, NetNS: ns.Name})
	if !wirefleet.IsKind(err, wirefleet.KindUnavailable) {
		t.Errorf("attach to lo: got %v, want KindUnavailable (not WireGuard)", err)
	}
}
