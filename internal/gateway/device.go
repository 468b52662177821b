package gateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/userspace"
)

// openDevice opens the device with the production backends.
//
// Interim: until wgdev/auto (kernel, attach and the auto choice) lands, only the userspace
// backend exists, so auto means userspace and kernel/attach are refused with a clear error.
// This function is the one place to switch to auto.Open.
func openDevice(ctx context.Context, dc DeviceConfig, key *wirefleet.Key, log *slog.Logger) (wgdev.Device, error) {
	switch dc.Backend {
	case "userspace", "auto":
		if dc.Backend == "auto" {
			log.Info("backend auto: using userspace (the kernel backend is not built in yet)")
		}
		cfg := userspace.Config{Name: dc.Name, ListenPort: dc.ListenPort, Addresses: dc.Addresses, MTU: dc.MTU, Logger: log}
		if key != nil {
			cfg.PrivateKey = *key
		}
		return userspace.Open(ctx, cfg)
	default:
		return nil, fmt.Errorf("-wg-backend %s is not built in yet; use userspace", dc.Backend)
	}
}
