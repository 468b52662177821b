package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/wirefleet/wirefleet/internal/mesh"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/userspace"
)

// openMeshDevice adapts the device layer to the mesh node. The backend chooser
// (internal/wgdev/auto) is not in the tree yet: until it is, "auto" means the embedded
// userspace backend, and kernel/attach say they are unavailable.
func openMeshDevice(backend string, log *slog.Logger) mesh.OpenDevice {
	return func(ctx context.Context, c mesh.DeviceConfig) (wgdev.Device, error) {
		if c.Attach {
			return nil, fmt.Errorf("-e (existing interface) needs the attach backend, not available in this build yet")
		}
		if backend == "kernel" {
			return nil, fmt.Errorf("the kernel backend is not available in this build yet; use -backend userspace")
		}
		return userspace.Open(ctx, userspace.Config{Name: c.Name, ListenPort: c.ListenPort, PrivateKey: c.PrivateKey,
			Addresses: c.Addresses, Logger: log})
	}
}
