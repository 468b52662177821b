// Package ctrl applies and reads the peers of an existing WireGuard interface through
// wgctrl, which speaks generic netlink to kernel devices and UAPI to userspace ones. The
// kernel backend (on the link it creates) and the attach backend (on someone else's link,
// restricted to the managed prefixes) are both built on it.
//
// Allowed IPs: wgctrl can only add allowed IPs or replace them all. A peer whose new set
// contains all its old prefixes gets the new ones added: no window. When prefixes must go,
// userspace devices get "allowed_ip=-PREFIX" lines after the additions, on their UAPI socket
// (no window); kernel devices get one ReplaceAllowedIPs message, which the kernel applies
// under its configuration lock but not atomically for packets in flight: for the
// microseconds between removing and re-inserting, packets to the peer find no route. This
// is the best the netlink API allows (kernels before 6.16 cannot remove a single prefix).
//
// To know which prefixes are stale without reading every peer, a Peers value keeps the
// allowed IPs of the peers it manages, refreshed by every Read. A change made behind its
// back (wg set) is picked up at the next Read; the reconciler's periodic full diff calls
// Read, so such drift is bounded by its period.
package ctrl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/uapi"
)

// Client is the part of *wgctrl.Client this package uses.
type Client interface {
	Device(name string) (*wgtypes.Device, error)
	ConfigureDevice(name string, cfg wgtypes.Config) error
}

// Options tune a Peers.
type Options struct {
	// Owned, when non-nil, restricts this process to the peers whose allowed IPs all lie in
	// these prefixes (attached, shared devices); nil: every peer is ours.
	Owned wgdev.Ownership
	// NoPerPrefixRemoval forces the kernel way (ReplaceAllowedIPs) of removing stale
	// prefixes on userspace devices too. Tests use it to run the kernel code path against a
	// userspace device on machines without the kernel module.
	NoPerPrefixRemoval bool
}

// Peers manages the peers of one interface.
type Peers struct {
	c    Client
	name string
	opt  Options

	mu sync.Mutex // guards every field below; serialises applies
	// allowed holds the allowed IPs of each managed peer as last set or read.
	allowed map[wirefleet.Key][]netip.Prefix
	owner   map[netip.Prefix]wirefleet.Key
	// foreign holds the keys of peers seen on the device that are not ours (attach).
	foreign map[wirefleet.Key]bool
	devType wgtypes.DeviceType
}

// New reads the device once and returns its peer manager.
func New(c Client, name string, opt Options) (*Peers, error) {
	p := &Peers{c: c, name: name, opt: opt, allowed: map[wirefleet.Key][]netip.Prefix{}, owner: map[netip.Prefix]wirefleet.Key{}, foreign: map[wirefleet.Key]bool{}}
	if _, err := p.readLocked(); err != nil {
		return nil, err
	}
	return p, nil
}

// DeviceType is the kind of device wgctrl found (kernel or userspace).
func (p *Peers) DeviceType() wgtypes.DeviceType {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.devType
}

func (p *Peers) device() (*wgtypes.Device, error) {
	d, err := p.c.Device(p.name)
	if err != nil {
		return nil, fmt.Errorf("read WireGuard device %s: %w", p.name, err)
	}
	return d, nil
}

// readLocked reads the device, refreshes the copies, and returns the managed peers.
func (p *Peers) readLocked() ([]wgdev.PeerStatus, error) {
	d, err := p.device()
	if err != nil {
		return nil, err
	}
	p.devType = d.Type
	clear(p.allowed)
	clear(p.owner)
	clear(p.foreign)
	out := make([]wgdev.PeerStatus, 0, len(d.Peers))
	for i := range d.Peers {
		s := status(&d.Peers[i])
		if p.opt.Owned != nil && !p.opt.Owned.Owns(s.AllowedIPs) {
			p.foreign[s.PublicKey] = true
			continue
		}
		p.setAllowedLocked(s.PublicKey, wgdev.Normalize(s.AllowedIPs))
		out = append(out, s)
	}
	return out, nil
}

// Read returns the managed peers with their statistics.
func (p *Peers) Read(ctx context.Context) ([]wgdev.PeerStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readLocked()
}

// Apply upserts and removes peers (see wgdev.Device.ApplyPeers).
func (p *Peers) Apply(ctx context.Context, upsert []wgdev.Peer, remove []wirefleet.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := wgdev.ValidatePeers(upsert, remove); err != nil {
		return err
	}
	if p.opt.Owned != nil {
		if err := p.opt.Owned.Check(upsert); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opt.Owned != nil {
		if err := p.checkForeignLocked(upsert, remove); err != nil {
			return err
		}
	}
	cfg := wgtypes.Config{Peers: make([]wgtypes.PeerConfig, 0, len(upsert)+len(remove))}
	var prune []uapi.Change // userspace devices: stale prefixes to remove after the adds
	perPrefix := p.devType == wgtypes.Userspace && !p.opt.NoPerPrefixRemoval
	for _, u := range upsert {
		want := wgdev.Normalize(u.AllowedIPs)
		stale := wgdev.Stale(p.allowed[u.PublicKey], want)
		pc := peerConfig(u, want)
		if len(stale) > 0 {
			if perPrefix {
				// Re-adding want is a no-op; it lets the fallback in pruneLocked replace.
				prune = append(prune, uapi.Change{Peer: wgdev.Peer{PublicKey: u.PublicKey, PersistentKeepalive: u.PersistentKeepalive, PresharedKey: u.PresharedKey, AllowedIPs: want}, Stale: stale})
			} else {
				pc.ReplaceAllowedIPs = true
			}
		}
		cfg.Peers = append(cfg.Peers, pc)
	}
	for _, k := range remove {
		if p.opt.Owned != nil && p.allowed[k] == nil {
			continue // not ours, or gone: removing an unknown key is a no-op
		}
		cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: wgtypes.Key(k), Remove: true})
	}
	if err := p.c.ConfigureDevice(p.name, cfg); err != nil {
		p.readLocked() // best effort: the apply may be partial
		return fmt.Errorf("configure %d peers, remove %d on %s: %w", len(upsert), len(remove), p.name, err)
	}
	if len(prune) > 0 {
		if err := p.pruneLocked(ctx, prune); err != nil {
			p.readLocked()
			return fmt.Errorf("remove stale allowed IPs on %s: %w", p.name, err)
		}
	}
	for _, u := range upsert {
		p.setAllowedLocked(u.PublicKey, wgdev.Normalize(u.AllowedIPs))
	}
	for _, k := range remove {
		p.setAllowedLocked(k, nil)
	}
	return nil
}

// pruneLocked removes stale prefixes one by one on a userspace device. wireguard-go before
// 0.0.20230223 (Debian 12's) does not know "allowed_ip=-PREFIX" and answers EINVAL at that
// line, having applied nothing else; for such a device, fall back to the kernel way
// (replace the whole list) now and from then on.
func (p *Peers) pruneLocked(ctx context.Context, prune []uapi.Change) error {
	body := uapi.AppendSet(nil, uapi.Interface{}, prune, nil)
	err := uapi.Set(ctx, p.name, body)
	if err == nil || !errors.Is(err, uapi.ErrInvalid) {
		return err
	}
	p.opt.NoPerPrefixRemoval = true
	cfg := wgtypes.Config{}
	for _, c := range prune {
		pc := wgtypes.PeerConfig{PublicKey: wgtypes.Key(c.PublicKey), UpdateOnly: true, ReplaceAllowedIPs: true}
		pc.AllowedIPs = ipNets(c.AllowedIPs)
		cfg.Peers = append(cfg.Peers, pc)
	}
	return p.c.ConfigureDevice(p.name, cfg)
}

// setAllowedLocked records that k holds exactly want (nil: k is gone), taking each prefix
// from the peer that held it, as WireGuard does. O(prefixes involved), not O(peers).
func (p *Peers) setAllowedLocked(k wirefleet.Key, want []netip.Prefix) {
	for _, a := range p.allowed[k] {
		if p.owner[a] == k {
			delete(p.owner, a)
		}
	}
	if want == nil {
		delete(p.allowed, k)
		return
	}
	for _, a := range want {
		if prev, ok := p.owner[a]; ok && prev != k {
			p.allowed[prev] = slices.DeleteFunc(slices.Clone(p.allowed[prev]), func(b netip.Prefix) bool { return b == a })
		}
		p.owner[a] = k
	}
	p.allowed[k] = want
}

// checkForeignLocked refuses to touch a peer that is on the device but not ours. A key to
// remove that we do not know may have been added (inside our prefixes) since the last
// read: re-read once to be sure, so that it is removed. Upserts do not re-read: a new key
// colliding with a static peer's added since the last read is not a realistic case.
func (p *Peers) checkForeignLocked(upsert []wgdev.Peer, remove []wirefleet.Key) error {
	for _, k := range remove {
		if p.allowed[k] == nil && !p.foreign[k] {
			if _, err := p.readLocked(); err != nil {
				return err
			}
			break
		}
	}
	for _, u := range upsert {
		if p.foreign[u.PublicKey] {
			return wirefleet.Errorf(wirefleet.KindConflict, "peer %s exists on %s outside the managed prefixes %s: it is not Wirefleet's to change", u.PublicKey, p.name, p.opt.Owned)
		}
	}
	return nil
}

// Interface reads the device's public key and listen port.
func (p *Peers) Interface() (pub wirefleet.Key, port int, err error) {
	d, err := p.device()
	if err != nil {
		return pub, 0, err
	}
	if d.PrivateKey != (wgtypes.Key{}) {
		pub = wirefleet.Key(d.PublicKey)
	}
	return pub, d.ListenPort, nil
}

// Configure sets the private key and/or listen port (nil: unchanged).
func (p *Peers) Configure(priv *wirefleet.Key, port *int) error {
	if priv == nil && port == nil {
		return nil
	}
	cfg := wgtypes.Config{ListenPort: port}
	if priv != nil {
		k := wgtypes.Key(*priv)
		cfg.PrivateKey = &k
	}
	if err := p.c.ConfigureDevice(p.name, cfg); err != nil {
		return fmt.Errorf("configure %s: %w", p.name, err)
	}
	return nil
}

func peerConfig(u wgdev.Peer, allowed []netip.Prefix) wgtypes.PeerConfig {
	var psk wgtypes.Key
	if u.PresharedKey != nil {
		psk = wgtypes.Key(*u.PresharedKey)
	}
	ka := time.Duration(wgdev.KeepaliveSeconds(u.PersistentKeepalive)) * time.Second
	pc := wgtypes.PeerConfig{
		PublicKey:                   wgtypes.Key(u.PublicKey),
		PresharedKey:                &psk,
		PersistentKeepaliveInterval: &ka,
		AllowedIPs:                  ipNets(allowed),
	}
	if u.Endpoint.IsValid() {
		pc.Endpoint = net.UDPAddrFromAddrPort(u.Endpoint)
	}
	return pc
}

func ipNets(prefixes []netip.Prefix) []net.IPNet {
	out := make([]net.IPNet, len(prefixes))
	for i, a := range prefixes {
		out[i] = net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}
	}
	return out
}

func status(wp *wgtypes.Peer) wgdev.PeerStatus {
	s := wgdev.PeerStatus{
		Peer: wgdev.Peer{
			PublicKey:           wirefleet.Key(wp.PublicKey),
			PersistentKeepalive: wp.PersistentKeepaliveInterval,
			AllowedIPs:          make([]netip.Prefix, 0, len(wp.AllowedIPs)),
		},
		LastHandshake: wp.LastHandshakeTime,
		RxBytes:       wp.ReceiveBytes,
		TxBytes:       wp.TransmitBytes,
	}
	if wp.PresharedKey != (wgtypes.Key{}) {
		psk := wirefleet.Key(wp.PresharedKey)
		s.PresharedKey = &psk
	}
	if wp.Endpoint != nil {
		s.Endpoint = wp.Endpoint.AddrPort()
		s.Endpoint = netip.AddrPortFrom(s.Endpoint.Addr().Unmap(), s.Endpoint.Port())
	}
	for _, n := range wp.AllowedIPs {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, bits := n.Mask.Size()
		if bits == 32 {
			a = a.Unmap()
		}
		s.AllowedIPs = append(s.AllowedIPs, netip.PrefixFrom(a, ones))
	}
	if s.LastHandshake.Unix() <= 0 {
		s.LastHandshake = time.Time{}
	}
	return s
}
