package auto_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
	"github.com/wirefleet/wirefleet/internal/wgdev/kernel"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  auto.Config
		want string // "" for valid
	}{
		{auto.Config{}, ""},
		{auto.Config{Backend: "userspace"}, ""},
		{auto.Config{Backend: "kernel"}, ""},
		{auto.Config{Backend: "attach", ManagedPrefixes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}}, ""},
		{auto.Config{Backend: "attach"}, "needs managed prefixes"},
		{auto.Config{Backend: "wireguard"}, `unknown WireGuard backend "wireguard"`},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !wirefleet.IsKind(err, wirefleet.KindInvalid)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestAutoChoosesAndLogs: auto picks the kernel where it can, and otherwise userspace,
// logging which and why; the explicit backends do as told.
func TestAutoChoosesAndLogs(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfo")
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	name := testenv.UniqueName("wfo")
	d, err := auto.Open(context.Background(), auto.Config{Name: name, NetNS: ns.Name, Logger: log,
		Addresses: []netip.Prefix{netip.MustParsePrefix("198.18.5.1/24")}})
	if err != nil {
		t.Fatalf("auto.Open: %v", err)
	}
	info, err := d.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, kerr := kernel.Open(context.Background(), kernel.Config{Name: testenv.UniqueName("wfo"), NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
	kernelWorks := !errors.Is(kerr, kernel.ErrNoKernelSupport)
	switch {
	case kernelWorks && info.Backend != "kernel":
		t.Errorf("kernel works here, but auto chose %s", info.Backend)
	case !kernelWorks && info.Backend != "userspace":
		t.Errorf("no kernel WireGuard here, but auto chose %s", info.Backend)
	}
	if info.Backend == "kernel" {
		d.(*kernel.Device).Delete()
	}
	d.Close()
	out := logs.String()
	if !strings.Contains(out, "WireGuard backend chosen: "+info.Backend) || !strings.Contains(out, "reason=") {
		t.Errorf("the choice and its reason were not logged:\n%s", out)
	}
	if info.Backend == "userspace" && !strings.Contains(out, "kernel has no WireGuard support") {
		t.Errorf("the fallback's reason is not the kernel's error:\n%s", out)
	}
	t.Logf("auto chose %s; log:\n%s", info.Backend, out)

	// Explicit userspace is userspace.
	u, err := auto.Open(context.Background(), auto.Config{Backend: "userspace", Name: testenv.UniqueName("wfo"), NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if info, _ := u.Info(context.Background()); info.Backend != "userspace" {
		t.Errorf("backend userspace opened %s", info.Backend)
	}
	// Explicit kernel fails as the kernel does, without falling back.
	if !kernelWorks {
		_, err := auto.Open(context.Background(), auto.Config{Backend: "kernel", Name: testenv.UniqueName("wfo"), NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
		if !errors.Is(err, kernel.ErrNoKernelSupport) {
			t.Errorf("backend kernel without module: got %v, want ErrNoKernelSupport", err)
		}
	}
}
