// Package reconcile keeps WireGuard devices equal to the desired state a gateway receives
// from the control plane (internal/replication): it is the replication Applier of a
// managed gateway.
//
// Each op costs O(1) on the device: a peer.put of an active peer (enabled, not expired) is
// one upsert with allowed IPs = its addresses and its preshared key; disabling, expiring or
// deleting a peer is one remove; a peer.replace (a device re-registered with a new key) is
// one ApplyPeers call upserting the new key and removing the old, so the device switches
// atomically in one UAPI transaction; a network.put changes the interface in place (port,
// addresses, MTU, private key) through wgdev.Device.Configure — the link is never
// recreated. A snapshot (start or reload) reads each device once and writes only the
// difference. A periodic drift check does the same and counts every repair (metric hook
// and log line), so a peer removed or altered behind the gateway's back (`wg set`) comes
// back. Only peers whose allowed IPs lie inside the network's prefixes are ever touched: on
// an attached interface, static peers of wg-quick are left alone.
//
// Fail-open: the desired state and its log position are kept on disk in the state dir (a
// checkpoint plus an append-only journal of the ops applied since, so persisting one op is
// one small write). A gateway restarted while the control plane is down serves every peer
// it served before; when the control plane returns, the follower resumes after the saved
// seq (with its hash, so a restored or replaced control plane is detected) instead of
// replaying the log. Peers whose expires_at passes while the control plane is away are
// still removed by the drift check, since the gateway evaluates expiry itself.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Opener opens the device of a network the first time the gateway sees it (creating it
// with the network's key, port, addresses and MTU, or attaching to an existing one).
type Opener func(ctx context.Context, n wirefleet.NetworkValue) (wgdev.Device, error)

// Hooks observe the reconciler (metrics). Nil hooks are skipped.
type Hooks struct {
	// Applied is called after each op with its type and how long it took on the device.
	Applied func(typ wirefleet.OpType, d time.Duration)
	// Repaired is called for each drift repair: kind is "missing", "stray", "altered" or
	// "interface".
	Repaired func(network, kind string)
	// DeviceError is called when a device write or read fails.
	DeviceError func(network string)
	// Propagated is called after each visible op with the time from its commit on the
	// control plane (op.Time) to its application here (clocks assumed in sync, e.g. NTP).
	Propagated func(d time.Duration)
}

// Config configures a Reconciler.
type Config struct {
	Open Opener
	// Networks lists the networks this gateway serves; empty means every network it is
	// allowed to see.
	Networks []string
	// StateDir keeps the desired state across restarts; "" disables persistence (tests).
	StateDir string
	// DriftInterval is the period of the drift check (default 60 s).
	DriftInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	Hooks         Hooks
}

// Reconciler is the desired state of a gateway and the devices it drives.
type Reconciler struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	kick  chan struct{} // asks Run for an early drift check (after a device error)
	hooks Hooks

	mu       sync.Mutex // guards everything below; held for every device write
	seq      uint64
	hash     wirefleet.Hash
	networks map[string]*netState
	gen      uint64 // incremented by Reset, so a drift check spanning one aborts
	// touched records peers and networks changed by ops while a drift check reads the
	// devices without the lock; nil when no drift check runs.
	touched map[string]bool
	journal *journal
	// loading is set while Load replays the journal: devices are opened afterwards.
	loading bool
}

// netState is one served network: its desired config and peers, and its device.
type netState struct {
	value wirefleet.NetworkValue
	peers map[wirefleet.Key]wirefleet.PeerValue // every peer of the network, active or not
	dev   wgdev.Device                          // nil until opened (retried by the drift check)
	own   wgdev.Ownership
	// attached is set for an interface that is not ours (wgdev attach backend): its key,
	// port, addresses and MTU are never changed, only the peers in our prefixes.
	attached bool
}

// New returns a Reconciler. Call Load before handing it to a follower.
func New(cfg Config) (*Reconciler, error) {
	if cfg.Open == nil {
		return nil, errors.New("reconcile: Config.Open is required")
	}
	if cfg.DriftInterval <= 0 {
		cfg.DriftInterval = 60 * time.Second
	}
	r := &Reconciler{cfg: cfg, log: cfg.Logger, now: cfg.Now, hooks: cfg.Hooks, kick: make(chan struct{}, 1), networks: map[string]*netState{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Position implements replication.Applier.
func (r *Reconciler) Position() (uint64, wirefleet.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq, r.hash
}

// serves reports whether this gateway serves network name.
func (r *Reconciler) serves(name string) bool {
	return len(r.cfg.Networks) == 0 || slices.Contains(r.cfg.Networks, name)
}

// Apply implements replication.Applier: one device write per op. A device error does not
// stop the stream: the desired state moves on, the error is logged and counted, and an
// early drift check repairs the device.
func (r *Reconciler) Apply(ctx context.Context, ops []wirefleet.Op) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, op := range ops {
		start := time.Now()
		if err := r.applyOp(ctx, op); err != nil {
			if wirefleet.KindOf(err) == wirefleet.KindInvalid && isDecodeError(err) {
				return err // a malformed op is not something a retry or a repair fixes
			}
			r.log.Error("apply op to device failed; the drift check will repair", "seq", op.Seq, "type", op.Type, "err", err)
			r.kickDrift()
		}
		r.seq, r.hash = op.Seq, op.Hash
		if r.hooks.Applied != nil {
			r.hooks.Applied(op.Type, time.Since(start))
		}
		if r.hooks.Propagated != nil && !op.Time.IsZero() {
			r.hooks.Propagated(r.now().Sub(op.Time))
		}
	}
	if r.journal != nil {
		if err := r.journal.append(ops); err != nil {
			r.log.Error("persist applied ops failed (the state on disk lags; a restart catches up from the log)", "err", err)
		} else if r.journal.full(r.peerCount()) {
			if err := r.checkpointLocked(); err != nil {
				r.log.Error("write checkpoint failed", "err", err)
			}
		}
	}
	return nil
}

type decodeError struct{ error }

func isDecodeError(err error) bool {
	var d decodeError
	return errors.As(err, &d)
}

func decode(op wirefleet.Op, v any) error {
	if err := json.Unmarshal(op.Value, v); err != nil {
		return decodeError{wirefleet.Errorf(wirefleet.KindInvalid, "op %d (%s %s): bad value: %v", op.Seq, op.Type, op.Key, err)}
	}
	return nil
}

// applyOp applies one op to the desired state and its device. Called with r.mu held.
func (r *Reconciler) applyOp(ctx context.Context, op wirefleet.Op) error {
	switch op.Type {
	case wirefleet.OpNetworkPut:
		var v wirefleet.NetworkValue
		if err := decode(op, &v); err != nil {
			return err
		}
		if !r.serves(v.Name) {
			return nil
		}
		r.touch("network/" + v.Name)
		return r.putNetwork(ctx, v)
	case wirefleet.OpNetworkDelete:
		name := op.Key[len("network/"):]
		ns := r.networks[name]
		if ns == nil {
			return nil
		}
		r.touch("network/" + name)
		delete(r.networks, name)
		return r.closeNetwork(ctx, name, ns)
	case wirefleet.OpPeerPut:
		var v wirefleet.PeerValue
		if err := decode(op, &v); err != nil {
			return err
		}
		ns := r.networks[v.Network]
		if ns == nil {
			return nil
		}
		v.Name, v.CreatedAt, v.UpdatedAt = "", time.Time{}, time.Time{} // not needed on a gateway
		ns.peers[v.PublicKey] = v
		r.touch(wirefleet.PeerKey(v.Network, v.PublicKey))
		if ns.dev == nil {
			return nil
		}
		if p, ok := r.devicePeer(ns, v); ok {
			return ns.dev.ApplyPeers(ctx, []wgdev.Peer{p}, nil)
		}
		return ns.dev.ApplyPeers(ctx, nil, []wirefleet.Key{v.PublicKey})
	case wirefleet.OpPeerReplace:
		// One device transaction: the old key leaves as the new one arrives (a device
		// re-registering keeps its address, so both never hold it at once).
		var v wirefleet.PeerReplaceValue
		if err := decode(op, &v); err != nil {
			return err
		}
		ns := r.networks[v.Network]
		if ns == nil {
			return nil
		}
		pv := v.PeerValue
		pv.Name, pv.CreatedAt, pv.UpdatedAt = "", time.Time{}, time.Time{}
		delete(ns.peers, v.Replaces)
		ns.peers[pv.PublicKey] = pv
		r.touch(wirefleet.PeerKey(v.Network, v.Replaces))
		r.touch(wirefleet.PeerKey(v.Network, pv.PublicKey))
		if ns.dev == nil {
			return nil
		}
		if p, ok := r.devicePeer(ns, pv); ok {
			return ns.dev.ApplyPeers(ctx, []wgdev.Peer{p}, []wirefleet.Key{v.Replaces})
		}
		return ns.dev.ApplyPeers(ctx, nil, []wirefleet.Key{v.Replaces, pv.PublicKey})
	case wirefleet.OpPeerDelete:
		name, pub, err := wirefleet.ParsePeerKey(op.Key)
		if err != nil {
			return decodeError{err}
		}
		ns := r.networks[name]
		if ns == nil {
			return nil
		}
		delete(ns.peers, pub)
		r.touch(op.Key)
		if ns.dev == nil {
			return nil
		}
		return ns.dev.ApplyPeers(ctx, nil, []wirefleet.Key{pub})
	}
	return nil // token ops, elided ops: position only
}

func (r *Reconciler) touch(key string) {
	if r.touched != nil {
		r.touched[key] = true
	}
}

// putNetwork creates or updates a served network. Called with r.mu held.
func (r *Reconciler) putNetwork(ctx context.Context, v wirefleet.NetworkValue) error {
	ns := r.networks[v.Name]
	if ns == nil {
		ns = &netState{value: v, peers: map[wirefleet.Key]wirefleet.PeerValue{}, own: ownership(v)}
		r.networks[v.Name] = ns
		if r.loading {
			return nil
		}
		return r.openDevice(ctx, ns)
	}
	old := ns.value
	ns.value, ns.own = v, ownership(v)
	if ns.dev == nil {
		return r.openDevice(ctx, ns)
	}
	cfg, changed := interfaceChange(old, v)
	if !changed || ns.attached {
		return nil
	}
	r.log.Info("network changed: configuring the interface in place", "network", v.Name)
	return ns.dev.Configure(ctx, cfg)
}

// openDevice opens ns's device and brings it to the desired peers. Called with r.mu held.
func (r *Reconciler) openDevice(ctx context.Context, ns *netState) error {
	start := time.Now()
	dev, err := r.cfg.Open(ctx, ns.value)
	if err != nil {
		return fmt.Errorf("open device of network %q: %w", ns.value.Name, err)
	}
	ns.dev = dev
	if info, err := dev.Info(ctx); err == nil {
		ns.attached = info.Backend == "attach"
	}
	// The device may hold peers already (a kernel or attached link survives restarts):
	// one read and the difference.
	if _, err = r.syncLocked(ctx, ns, false); err != nil {
		return err
	}
	r.log.Info("device opened and brought to the control plane's state", "network", ns.value.Name, "peers", len(ns.peers), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// closeNetwork removes every peer of a deleted network from its device and closes it.
func (r *Reconciler) closeNetwork(ctx context.Context, name string, ns *netState) error {
	if ns.dev == nil {
		return nil
	}
	defer ns.dev.Close()
	actual, err := ns.dev.Peers(ctx)
	if err != nil {
		return fmt.Errorf("network %q deleted: read device: %w", name, err)
	}
	var remove []wirefleet.Key
	for _, a := range actual {
		if ns.own.Owns(a.AllowedIPs) {
			remove = append(remove, a.PublicKey)
		}
	}
	if len(remove) == 0 {
		return nil
	}
	return ns.dev.ApplyPeers(ctx, nil, remove)
}

func ownership(v wirefleet.NetworkValue) wgdev.Ownership { return wgdev.Ownership(v.Prefixes()) }

// Addresses returns the interface addresses of a network (its own host addresses).
func Addresses(n wirefleet.Network) []netip.Prefix {
	var out []netip.Prefix
	if n.IPv4.IsValid() {
		out = append(out, n.IPv4)
	}
	if n.IPv6.IsValid() {
		out = append(out, n.IPv6)
	}
	return out
}

// interfaceChange returns the Configure call that turns old into new, and whether there
// is anything to change.
func interfaceChange(old, new wirefleet.NetworkValue) (wgdev.Interface, bool) {
	var cfg wgdev.Interface
	changed := false
	if old.PrivateKey != new.PrivateKey {
		k := new.PrivateKey
		cfg.PrivateKey, changed = &k, true
	}
	if old.ListenPort != new.ListenPort {
		p := int(new.ListenPort)
		cfg.ListenPort, changed = &p, true
	}
	if !slices.Equal(Addresses(old.Network), Addresses(new.Network)) {
		cfg.Addresses, changed = Addresses(new.Network), true
	}
	if old.MTU != new.MTU && new.MTU != 0 {
		cfg.MTU, changed = new.MTU, true
	}
	return cfg, changed
}

// active reports whether p belongs on the device at now: enabled, not marked expired,
// and its expiry (if any) not passed — evaluated locally so expiry works while the
// control plane is away.
func active(p wirefleet.PeerValue, now time.Time) bool {
	return p.Enabled && !p.Expired && (p.ExpiresAt == nil || now.Before(*p.ExpiresAt))
}

// devicePeer is p as the device should hold it, or false when it must not be there.
func (r *Reconciler) devicePeer(ns *netState, p wirefleet.PeerValue) (wgdev.Peer, bool) {
	if !active(p, r.now()) {
		return wgdev.Peer{}, false
	}
	allowed := p.AllowedIPs()
	if !ns.own.Owns(allowed) {
		// IPAM never allocates outside the network; an address outside it (a network
		// re-addressed under its peers) must not make us touch foreign peers.
		return wgdev.Peer{}, false
	}
	return wgdev.Peer{PublicKey: p.PublicKey, PresharedKey: p.PresharedKey, AllowedIPs: allowed}, true
}

func (r *Reconciler) peerCount() int {
	n := 0
	for _, ns := range r.networks {
		n += len(ns.peers)
	}
	return n
}

func (r *Reconciler) kickDrift() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Devices returns the open devices by network, for the stats collector (which reads them
// without any lock of the apply path).
func (r *Reconciler) Devices() map[string]wgdev.Device {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]wgdev.Device, len(r.networks))
	for name, ns := range r.networks {
		if ns.dev != nil {
			out[name] = ns.dev
		}
	}
	return out
}

// Counts returns the number of desired peers and of active ones per network (metrics).
func (r *Reconciler) Counts() map[string][2]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	out := make(map[string][2]int, len(r.networks))
	for name, ns := range r.networks {
		act := 0
		for _, p := range ns.peers {
			if active(p, now) {
				act++
			}
		}
		out[name] = [2]int{len(ns.peers), act}
	}
	return out
}
