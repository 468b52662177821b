// Package auto opens the WireGuard device a Wirefleet process asked for: kernel, userspace
// or attach by name, or "auto" (the default), which prefers the kernel and falls back to the
// embedded userspace implementation when the kernel cannot create a wireguard link. The
// choice and its reason are logged, so an operator can see why a host runs userspace.
package auto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/attach"
	"github.com/wirefleet/wirefleet/internal/wgdev/kernel"
	"github.com/wirefleet/wirefleet/internal/wgdev/userspace"
)

// Backends are the accepted values of Config.Backend ("" means auto).
var Backends = []string{"auto", "kernel", "userspace", "attach"}

// Config is what the composition roots (gateway, server, mesh) pass.
type Config struct {
	Backend    string // auto (default), kernel, userspace or attach
	Name       string
	ListenPort int
	PrivateKey wirefleet.Key // zero: leave unset (attach: always ignored)
	Addresses  []netip.Prefix
	MTU        int
	// ManagedPrefixes are the prefixes whose peers this process owns. Required for attach;
	// ignored otherwise (a device Wirefleet creates is entirely its own).
	ManagedPrefixes []netip.Prefix
	// NetNS is the network namespace to create/find the interface in (tests); empty: ours.
	NetNS  string
	Logger *slog.Logger
}

// Validate checks the backend name and what it needs.
func (c Config) Validate() error {
	switch c.Backend {
	case "", "auto", "kernel", "userspace":
	case "attach":
		if len(c.ManagedPrefixes) == 0 {
			return wirefleet.Errorf(wirefleet.KindInvalid, "backend attach needs managed prefixes (the address ranges whose peers Wirefleet owns on the shared interface %s)", c.Name)
		}
	default:
		return wirefleet.Errorf(wirefleet.KindInvalid, "unknown WireGuard backend %q: use auto, kernel, userspace or attach", c.Backend)
	}
	return nil
}

// Open opens the device with the configured backend.
func Open(ctx context.Context, c Config) (wgdev.Device, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	log := c.Logger.With("device", c.Name)
	switch c.Backend {
	case "kernel":
		return openKernel(ctx, c)
	case "userspace":
		return openUserspace(ctx, c)
	case "attach":
		return attach.Open(ctx, attach.Config{Name: c.Name, ManagedPrefixes: c.ManagedPrefixes, NetNS: c.NetNS, Logger: c.Logger})
	}
	d, err := openKernel(ctx, c)
	if err == nil {
		log.Info("WireGuard backend chosen: kernel", "backend", "kernel", "reason", "the kernel can create wireguard links")
		return d, nil
	}
	if !errors.Is(err, kernel.ErrNoKernelSupport) {
		// Another failure (a conflicting interface, no permission) would hit userspace too,
		// and hiding it behind a fallback would only confuse.
		return nil, fmt.Errorf("open kernel WireGuard device %s: %w", c.Name, err)
	}
	log.Info("WireGuard backend chosen: userspace (embedded wireguard-go)", "backend", "userspace", "reason", err.Error())
	return openUserspace(ctx, c)
}

func openKernel(ctx context.Context, c Config) (*kernel.Device, error) {
	return kernel.Open(ctx, kernel.Config{Name: c.Name, ListenPort: c.ListenPort, PrivateKey: c.PrivateKey,
		Addresses: c.Addresses, MTU: c.MTU, NetNS: c.NetNS, Logger: c.Logger})
}

func openUserspace(ctx context.Context, c Config) (*userspace.Device, error) {
	return userspace.Open(ctx, userspace.Config{Name: c.Name, ListenPort: c.ListenPort, PrivateKey: c.PrivateKey,
		Addresses: c.Addresses, MTU: c.MTU, NetNS: c.NetNS, Logger: c.Logger})
}
