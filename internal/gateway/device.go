package gateway

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// allPrefixes is what an attached standalone gateway manages by default: every peer, as
// vpn-daemon does on the interface it is given.
var allPrefixes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// openDevice opens the device with the production backends (wgdev/auto logs which one it
// chose and why).
func openDevice(ctx context.Context, dc DeviceConfig, key *wirefleet.Key, log *slog.Logger) (wgdev.Device, error) {
	cfg := auto.Config{
		Backend:         dc.Backend,
		Name:            dc.Name,
		ListenPort:      dc.ListenPort,
		Addresses:       dc.Addresses,
		MTU:             dc.MTU,
		ManagedPrefixes: dc.ManagedPrefixes,
		Logger:          log,
	}
	if key != nil {
		cfg.PrivateKey = *key
	}
	if dc.Backend == "attach" && len(cfg.ManagedPrefixes) == 0 {
		log.Info("attach: managing every peer of the interface, as vpn-daemon does; set -wg-managed-prefix to limit", "device", dc.Name)
		cfg.ManagedPrefixes = allPrefixes
	}
	return auto.Open(ctx, cfg)
}
