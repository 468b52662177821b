// Package attach is the wgdev backend for an interface someone else owns (wg-quick, a
// stock wireguard-go, another daemon): it manages only the peers whose allowed IPs all lie
// inside the managed prefixes, through wgctrl (kernel and userspace devices alike), and
// never touches the interface's key, port, addresses, MTU or any other peer. Close leaves
// the interface and every peer in place.
package attach

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/ctrl"
	"github.com/wirefleet/wirefleet/internal/wgdev/link"
)

// Backend is the name reported in wgdev.Info.
const Backend = "attach"

// Config names the interface and the prefixes Wirefleet owns on it.
type Config struct {
	Name            string
	ManagedPrefixes []netip.Prefix
	NetNS           string // namespace of the interface (name or path); empty: ours
	Logger          *slog.Logger
}

// Device is an attached interface. It implements wgdev.Device; ctrl.Base gives it
// ApplyPeers, Peers, Info and Close. ApplyPeers refuses a peer with an allowed IP outside
// the managed prefixes (KindInvalid) and a key held by a peer that is not ours
// (KindConflict); removing a key that is not ours is a no-op. Peers lists only the managed
// peers. Close detaches: the interface and all its peers stay.
type Device struct {
	ctrl.Base
	log    *slog.Logger
	owned  wgdev.Ownership
	warned sync.Once
}

var _ wgdev.Device = (*Device)(nil)

// Open attaches to the existing interface cfg.Name.
func Open(ctx context.Context, cfg Config) (_ *Device, err error) {
	if len(cfg.ManagedPrefixes) == 0 {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "attach to %s: no managed prefixes given; an attached device is shared, so Wirefleet needs to know which peers are its own (the address ranges it hands out)", cfg.Name)
	}
	owned := make(wgdev.Ownership, 0, len(cfg.ManagedPrefixes))
	for _, p := range cfg.ManagedPrefixes {
		if !p.IsValid() {
			return nil, wirefleet.Errorf(wirefleet.KindInvalid, "attach to %s: invalid managed prefix", cfg.Name)
		}
		owned = append(owned, p.Masked())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Device{Base: ctrl.Base{Name: cfg.Name, Backend: Backend, Created: time.Now()}, owned: owned,
		log: cfg.Logger.With("device", cfg.Name, "backend", Backend)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	err = link.InNetNS(cfg.NetNS, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("open netlink: %w", err)
		}
		d.NL = h
		if d.Link, err = link.Open(h, cfg.Name); err != nil {
			return wirefleet.Errorf(wirefleet.KindNotFound, "attach: interface %s not found: attach manages peers on an existing WireGuard interface, so bring it up first (wg-quick up %s) or use -wg-backend auto", cfg.Name, cfg.Name)
		}
		if d.WG, err = wgctrl.New(); err != nil {
			return fmt.Errorf("open wgctrl: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if d.Ctrl, err = ctrl.New(d.WG, cfg.Name, ctrl.Options{Owned: owned}); err != nil {
		return nil, wirefleet.Errorf(wirefleet.KindUnavailable, "attach: %s is not a WireGuard interface wgctrl can drive (kernel link or UAPI socket): %v", cfg.Name, err)
	}
	d.log.Info("attached to existing WireGuard interface", "managed_prefixes", owned.String(), "type", d.Ctrl.DeviceType().String())
	return d, nil
}

// Configure implements wgdev.Device by changing nothing: the interface's key, port,
// addresses and MTU belong to whoever created it.
func (d *Device) Configure(ctx context.Context, cfg wgdev.Interface) error {
	if cfg.PrivateKey != nil || cfg.ListenPort != nil || cfg.Addresses != nil || cfg.MTU != 0 {
		d.warned.Do(func() {
			d.log.Warn("attached interface: key, port, addresses and MTU are left as their owner set them")
		})
	}
	return ctx.Err()
}
