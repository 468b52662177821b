package main

import (
	"context"
	"log/slog"

	"github.com/wirefleet/wirefleet/internal/mesh"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// openMeshDevice adapts the device layer to the mesh node: backend auto, kernel or
// userspace for a device the node creates, attach for -e (an existing interface, where only
// peers inside the mesh subnet are touched).
func openMeshDevice(backend string, log *slog.Logger) mesh.OpenDevice {
	return func(ctx context.Context, c mesh.DeviceConfig) (wgdev.Device, error) {
		if c.Attach {
			backend = "attach"
		}
		return auto.Open(ctx, auto.Config{Backend: backend, Name: c.Name, ListenPort: c.ListenPort,
			PrivateKey: c.PrivateKey, Addresses: c.Addresses, ManagedPrefixes: c.ManagedPrefixes, Logger: log})
	}
}
