// Package kernel is the wgdev backend for the Linux kernel's WireGuard: it creates (or
// adopts, after a restart) a link of type "wireguard" with netlink and configures it with
// wgctrl. The link and its peers survive Close and the process, so a gateway restart does
// not interrupt tunnels.
//
// When the kernel cannot create a wireguard link (no module), Open fails with an error
// wrapping ErrNoKernelSupport, which wgdev/auto takes as the signal to use userspace.
package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/ctrl"
	"github.com/wirefleet/wirefleet/internal/wgdev/link"
)

// Backend is the name reported in wgdev.Info.
const Backend = "kernel"

// DefaultMTU is WireGuard's usual MTU.
const DefaultMTU = 1420

// ErrNoKernelSupport is wrapped by Open's error when the kernel cannot create a wireguard
// link.
var ErrNoKernelSupport = errors.New("kernel has no WireGuard support")

// Config describes the device to create or adopt.
type Config struct {
	Name       string
	ListenPort int           // 0: a random free port (on a new link; kept on an adopted one)
	PrivateKey wirefleet.Key // zero: leave the link's key as it is
	Addresses  []netip.Prefix
	MTU        int    // 0: DefaultMTU on a new link, unchanged on an adopted one
	NetNS      string // network namespace of the link (name or path); empty: ours
	Logger     *slog.Logger
}

// Device is a kernel WireGuard link. It implements wgdev.Device; ctrl.Base gives it
// ApplyPeers, Peers, Info and Close. Close releases the netlink handles: the link and its
// peers stay, and a restarted gateway adopts them.
type Device struct {
	ctrl.Base
	netns string
	log   *slog.Logger
}

var _ wgdev.Device = (*Device)(nil)

// Open creates the wireguard link called cfg.Name, or adopts it when it already exists (its
// peers are kept), then applies key, port, addresses and MTU and sets it up.
func Open(ctx context.Context, cfg Config) (*Device, error) {
	return open(ctx, cfg, openOptions{})
}

type openOptions struct {
	// anyType adopts an existing link whatever its type (tests drive a wireguard-go device
	// through the kernel code path on machines without the module).
	anyType bool
	ctrl    ctrl.Options
}

func open(ctx context.Context, cfg Config, opt openOptions) (_ *Device, err error) {
	if cfg.Name == "" || len(cfg.Name) > 15 {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "interface name %q must be 1 to 15 bytes", cfg.Name)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Device{Base: ctrl.Base{Name: cfg.Name, Backend: Backend}, netns: cfg.NetNS,
		log: cfg.Logger.With("device", cfg.Name, "backend", Backend)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	created := false
	err = link.InNetNS(cfg.NetNS, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("open netlink: %w", err)
		}
		d.NL = h
		existing, err := h.LinkByName(cfg.Name)
		switch {
		case err == nil && existing.Type() != "wireguard" && !opt.anyType:
			return wirefleet.Errorf(wirefleet.KindConflict, "interface %s exists and is of type %q, not wireguard: remove it or pick another name", cfg.Name, existing.Type())
		case err == nil:
			d.log.Info("adopting existing WireGuard interface; its peers are kept", "type", existing.Type())
		default:
			mtu := cfg.MTU
			if mtu == 0 {
				mtu = DefaultMTU
			}
			la := netlink.NewLinkAttrs()
			la.Name, la.MTU = cfg.Name, mtu
			if err := h.LinkAdd(&netlink.Wireguard{LinkAttrs: la}); err != nil {
				return &wirefleet.Error{
					Kind:    wirefleet.KindUnavailable,
					Message: fmt.Sprintf("create WireGuard interface %s: kernel has no WireGuard support (modprobe wireguard failed?): %v; use -wg-backend userspace", cfg.Name, err),
					Err:     ErrNoKernelSupport,
				}
			}
			created = true
		}
		if d.Link, err = link.Open(h, cfg.Name); err != nil {
			return err
		}
		// wgctrl's generic netlink socket must live in the link's namespace.
		if d.WG, err = wgctrl.New(); err != nil {
			return fmt.Errorf("open wgctrl: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// For an adopted link the peer state is older, but by how much netlink cannot say:
	// now is the safe bound (node_uptime must not exceed the age of the peer state).
	d.Created = time.Now()
	if d.Ctrl, err = ctrl.New(d.WG, cfg.Name, opt.ctrl); err != nil {
		if created {
			d.deleteLink()
		}
		return nil, err
	}
	ifc := wgdev.Interface{Addresses: cfg.Addresses, MTU: cfg.MTU}
	if !cfg.PrivateKey.IsZero() {
		ifc.PrivateKey = &cfg.PrivateKey
	}
	if created || cfg.ListenPort != 0 {
		ifc.ListenPort = &cfg.ListenPort
	}
	if err := d.Configure(ctx, ifc); err != nil {
		if created {
			d.deleteLink()
		}
		return nil, err
	}
	if err := link.InNetNS(cfg.NetNS, d.Link.Up); err != nil {
		return nil, err
	}
	d.log.Info("kernel WireGuard device ready", "created", created)
	return d, nil
}

func (d *Device) deleteLink() {
	if nl, err := d.NL.LinkByIndex(d.Link.Index); err == nil {
		d.NL.LinkDel(nl)
	}
}

// Configure implements wgdev.Device, in place: wgctrl for key and port, netlink for
// addresses and MTU.
func (d *Device) Configure(ctx context.Context, cfg wgdev.Interface) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := d.Ctrl.Configure(cfg.PrivateKey, cfg.ListenPort); err != nil {
		return err
	}
	return link.InNetNS(d.netns, func() error {
		if cfg.Addresses != nil {
			if err := d.Link.SetAddresses(cfg.Addresses); err != nil {
				return err
			}
		}
		if cfg.MTU != 0 {
			return d.Link.SetMTU(cfg.MTU)
		}
		return nil
	})
}

// Delete removes the link (tests, and `wirefleet gateway --remove-device`-style cleanups).
func (d *Device) Delete() error {
	nl, err := d.NL.LinkByIndex(d.Link.Index)
	if err != nil {
		return fmt.Errorf("find %s: %w", d.Name, err)
	}
	if err := d.NL.LinkDel(nl); err != nil {
		return fmt.Errorf("delete %s: %w", d.Name, err)
	}
	return nil
}
