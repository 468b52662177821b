package enabler

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
)

// TestEnsureNetwork runs the start-up path of the network on a real SQLite store: created
// from the environment, updated on the next start, and a different WG_PRIVATE_KEY refused.
func TestEnsureNetwork(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := control.New(st, control.Options{})
	log := slog.New(slog.DiscardHandler)
	cfg := Default()
	cfg.ServerIP, cfg.Subnet = "vpn.example.test", "198.51.100.1/29"
	s, err := cfg.parse()
	if err != nil {
		t.Fatal(err)
	}
	n, err := ensureNetwork(ctx, svc, cfg, s, log)
	if err != nil {
		t.Fatal(err)
	}
	if n.Keepalive != 25 || n.Allocation != wirefleet.AllocRandom || n.ListenPort != 51820 || n.Endpoint != "vpn.example.test" || !n.PrivateKey.IsSet() {
		t.Errorf("created network %+v", n)
	}
	// A client takes .2 to .6 eventually; here one peer pins an address.
	priv, _ := wirefleet.GeneratePrivateKey()
	if _, err := svc.CreatePeer(ctx, control.PeerInput{Network: "wg0", PublicKey: priv.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	// Next start with another port and SERVER_IP: updated, same key.
	cfg.WGPort, cfg.ServerIP = "51999", "203.0.113.5"
	s, _ = cfg.parse()
	n2, err := ensureNetwork(ctx, svc, cfg, s, log)
	if err != nil {
		t.Fatal(err)
	}
	if n2.ListenPort != 51999 || n2.Endpoint != "203.0.113.5" || n2.PublicKey != n.PublicKey {
		t.Errorf("updated network %+v", n2)
	}
	// The same key given explicitly is fine; another one is refused.
	cfg.PrivateKey = n.PrivateKey.Reveal().String()
	s, _ = cfg.parse()
	if _, err := ensureNetwork(ctx, svc, cfg, s, log); err != nil {
		t.Errorf("same WG_PRIVATE_KEY: %v", err)
	}
	other, _ := wirefleet.GeneratePrivateKey()
	cfg.PrivateKey = other.String()
	s, _ = cfg.parse()
	_, err = ensureNetwork(ctx, svc, cfg, s, log)
	if err == nil || !strings.Contains(err.Error(), "WG_PRIVATE_KEY does not match") || strings.Contains(err.Error(), other.String()) {
		t.Errorf("other WG_PRIVATE_KEY: %v", err)
	}
}
