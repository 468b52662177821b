// Package wgdev is the device layer: one small port, Device, through which everything else
// in Wirefleet configures a WireGuard interface, and the pieces shared by its backends
// (kernel via wgctrl/netlink, embedded userspace wireguard-go over TUN, attach to an existing
// interface). Backends live in sub-packages; auto.Open (package wgdev/auto) picks one.
//
// The port is declarative and incremental: ApplyPeers upserts and removes only the peers it
// is given, so one change costs O(1) on the device whatever the number of peers, and a peer
// whose allowed IPs change never passes through a state with none (new prefixes are added
// before stale ones are removed).
//
// Sub-packages:
//   - auto: the selector the composition roots call (auto|kernel|userspace|attach).
//   - kernel, userspace, attach: the backends (the concrete adapters).
//   - ctrl: peer apply/read through wgctrl, shared by kernel and attach.
//   - link: addresses, MTU and state of the interface through netlink; network namespaces.
//   - uapi: the UAPI text protocol (parse "get", build "set").
//   - wgdevtest: the in-memory fake, the conformance suite, and a stock wireguard-go
//     launcher for tests.
//
// This package also holds what every backend checks the same way: ValidatePeers,
// Interface.Validate, and Ownership (which peers an attached process may touch).
package wgdev

import (
	"context"
	"net/netip"
	"time"

	"github.com/wirefleet/wirefleet"
)

// Peer is the desired configuration of one peer.
type Peer struct {
	PublicKey    wirefleet.Key
	PresharedKey *wirefleet.Key // nil: none
	Endpoint     netip.AddrPort // zero: none (the peer roams to us)
	AllowedIPs   []netip.Prefix
	// PersistentKeepalive is 0 for off.
	PersistentKeepalive time.Duration
}

// PeerStatus is a peer as read back from the device, with its statistics.
type PeerStatus struct {
	Peer
	LastHandshake time.Time // zero: never
	RxBytes       int64     // received from the peer
	TxBytes       int64     // sent to the peer
}

// Interface is the interface-wide configuration. Nil/zero fields are left unchanged by
// Configure, so a gateway can change one property in place without touching the others.
type Interface struct {
	PrivateKey *wirefleet.Key
	ListenPort *int
	// Addresses, when non-nil, become exactly the interface's addresses (added before
	// stale ones are removed). Attached devices ignore it: their addresses are not ours.
	Addresses []netip.Prefix
	MTU       int // 0: unchanged
}

// Validate checks the ranges every backend that changes port and MTU enforces (attach
// changes neither, so it does not call it).
func (i Interface) Validate() error {
	if i.ListenPort != nil && (*i.ListenPort < 0 || *i.ListenPort > 65535) {
		return wirefleet.Errorf(wirefleet.KindInvalid, "listen port %d is outside 0..65535", *i.ListenPort)
	}
	if i.MTU < 0 || i.MTU > 65535 {
		return wirefleet.Errorf(wirefleet.KindInvalid, "MTU %d is outside 1..65535", i.MTU)
	}
	return nil
}

// Info describes the device as it is.
type Info struct {
	Name    string
	Backend string // "kernel", "userspace" or "attach"
	// Index is the kernel's interface index. It stays the same for the life of the link, so
	// a changed index means the link was recreated (which the port never does).
	Index      int
	PublicKey  wirefleet.Key
	ListenPort int
	Addresses  []netip.Prefix
	MTU        int
	// Created is when this device's peer state began (the link was created, or the process
	// attached to it). vpn-daemon's node_uptime must not exceed the age of the peer state.
	Created time.Time
}

// Device is the port. Implementations are safe for concurrent use.
type Device interface {
	// ApplyPeers upserts every peer in upsert (allowed IPs replaced by the given ones without
	// a window with none; counters and handshake kept) and removes every key in remove.
	// Unknown keys in remove are ignored. The operation is one device transaction where the
	// backend allows it; on error the caller should assume a partial apply and re-read.
	ApplyPeers(ctx context.Context, upsert []Peer, remove []wirefleet.Key) error
	// Peers reads every peer the device holds (filtered to the managed prefixes for
	// attached devices), with statistics.
	Peers(ctx context.Context) ([]PeerStatus, error)
	// Configure changes interface properties in place; it never recreates the link.
	Configure(ctx context.Context, cfg Interface) error
	// Info reads the interface's current properties.
	Info(ctx context.Context) (Info, error)
	// Close releases the device. Kernel and attached links survive Close; a userspace
	// device goes away with its process.
	Close() error
}
