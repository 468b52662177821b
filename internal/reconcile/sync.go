package reconcile

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Reset implements replication.Applier: the desired state becomes snap (its served
// networks), and every device is brought to it with one read and one write of the
// difference. Interfaces of networks that stay are changed in place.
func (r *Reconciler) Reset(ctx context.Context, snap wirefleet.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	r.resetState(snap)
	for _, n := range r.cfg.Networks {
		if r.networks[n] == nil {
			r.log.Warn("a network this gateway should serve is not in the control plane's snapshot: it does not exist, or the token's scope does not include it", "network", n)
		}
	}
	for _, ns := range r.networks {
		var err error
		if ns.dev == nil {
			err = r.openDevice(ctx, ns)
		} else {
			_, err = r.syncLocked(ctx, ns, false)
		}
		if err != nil {
			r.log.Error("bring device to snapshot failed; the drift check will retry", "network", ns.value.Name, "err", err)
			r.kickDrift()
		}
	}
	if r.cfg.StateDir != "" {
		if err := r.checkpointLocked(); err != nil {
			r.log.Error("persist snapshot failed", "err", err)
		}
	}
	return nil
}

// resetState replaces the desired state by snap, closing devices of networks that left
// and configuring the others in place. Devices of new networks are opened by the caller.
func (r *Reconciler) resetState(snap wirefleet.Snapshot) {
	want := map[string]*netState{}
	for _, v := range snap.Networks {
		if r.serves(v.Name) {
			want[v.Name] = &netState{value: v, peers: map[wirefleet.Key]wirefleet.PeerValue{}, own: ownership(v)}
		}
	}
	for _, p := range snap.Peers {
		if ns := want[p.Network]; ns != nil {
			p.Name, p.CreatedAt, p.UpdatedAt = "", time.Time{}, time.Time{}
			ns.peers[p.PublicKey] = p
		}
	}
	ctx := context.Background()
	for name, old := range r.networks {
		ns, ok := want[name]
		if !ok {
			if err := r.closeNetwork(ctx, name, old); err != nil {
				r.log.Error("remove peers of a network that left", "network", name, "err", err)
			}
			continue
		}
		ns.dev, ns.attached = old.dev, old.attached
		if ns.dev != nil && !ns.attached {
			if cfg, changed := interfaceChange(old.value, ns.value); changed {
				if err := ns.dev.Configure(ctx, cfg); err != nil {
					r.log.Error("configure interface in place failed", "network", name, "err", err)
				}
			}
		}
	}
	r.networks = want
	r.seq, r.hash = snap.Seq, snap.Hash
}

// syncLocked reads ns's device once and writes the difference to the desired state.
// count reports the differences as drift repairs. Called with r.mu held.
func (r *Reconciler) syncLocked(ctx context.Context, ns *netState, count bool) (int, error) {
	actual, err := ns.dev.Peers(ctx)
	if err != nil {
		r.deviceError(ns.value.Name)
		return 0, fmt.Errorf("read device of network %q: %w", ns.value.Name, err)
	}
	n, err := r.repair(ctx, ns, actual, nil, count)
	if err != nil {
		return n, err
	}
	m, err := r.repairInterface(ctx, ns, count)
	return n + m, err
}

func (r *Reconciler) deviceError(network string) {
	if r.hooks.DeviceError != nil {
		r.hooks.DeviceError(network)
	}
}

// repair writes the difference between actual and the desired peers of ns in one
// ApplyPeers; peers for which skip is true are left out (an op changed them since the
// read). Peers outside the network's prefixes are never touched.
func (r *Reconciler) repair(ctx context.Context, ns *netState, actual []wgdev.PeerStatus, skip func(wirefleet.Key) bool, count bool) (int, error) {
	var upsert []wgdev.Peer
	var remove []wirefleet.Key
	var kinds []string
	seen := make(map[wirefleet.Key]bool, len(actual))
	for _, a := range actual {
		seen[a.PublicKey] = true
		if skip != nil && skip(a.PublicKey) {
			continue
		}
		want, ok := wgdev.Peer{}, false
		if p, exists := ns.peers[a.PublicKey]; exists {
			want, ok = r.devicePeer(ns, p)
		}
		switch {
		case !ok:
			if ns.own.Owns(a.AllowedIPs) {
				remove = append(remove, a.PublicKey)
				kinds = append(kinds, "stray")
			}
		case !samePeer(want, a.Peer):
			upsert = append(upsert, want)
			kinds = append(kinds, "altered")
		}
	}
	for k, p := range ns.peers {
		if seen[k] || (skip != nil && skip(k)) {
			continue
		}
		if want, ok := r.devicePeer(ns, p); ok {
			upsert = append(upsert, want)
			kinds = append(kinds, "missing")
		}
	}
	if len(upsert) == 0 && len(remove) == 0 {
		return 0, nil
	}
	if err := ns.dev.ApplyPeers(ctx, upsert, remove); err != nil {
		r.deviceError(ns.value.Name)
		return 0, fmt.Errorf("repair device of network %q: %w", ns.value.Name, err)
	}
	if count {
		for _, kind := range kinds {
			if r.hooks.Repaired != nil {
				r.hooks.Repaired(ns.value.Name, kind)
			}
		}
		r.log.Warn("drift repaired", "network", ns.value.Name, "upserted", len(upsert), "removed", len(remove), "kinds", summarize(kinds))
	}
	return len(kinds), nil
}

// summarize counts repair kinds for the log line.
func summarize(kinds []string) map[string]int {
	m := map[string]int{}
	for _, k := range kinds {
		m[k]++
	}
	return m
}

// samePeer compares what the reconciler controls: allowed IPs and the preshared key.
// Endpoint and keepalive are the peer's own (roaming) and not part of the desired state.
func samePeer(want, got wgdev.Peer) bool {
	if !slices.Equal(wgdev.Normalize(want.AllowedIPs), wgdev.Normalize(got.AllowedIPs)) {
		return false
	}
	wpsk, gpsk := keyOrZero(want.PresharedKey), keyOrZero(got.PresharedKey)
	return wpsk == gpsk
}

func keyOrZero(k *wirefleet.Key) wirefleet.Key {
	if k == nil {
		return wirefleet.Key{}
	}
	return *k
}

// repairInterface puts the interface's key, port, MTU and (for devices we own) addresses
// back in place.
func (r *Reconciler) repairInterface(ctx context.Context, ns *netState, count bool) (int, error) {
	info, err := ns.dev.Info(ctx)
	if err != nil {
		r.deviceError(ns.value.Name)
		return 0, fmt.Errorf("read interface of network %q: %w", ns.value.Name, err)
	}
	v := ns.value
	if info.Backend == "attach" {
		return 0, nil // not our interface: only its peers in our prefixes are ours
	}
	var cfg wgdev.Interface
	changed := false
	if info.PublicKey != v.PrivateKey.PublicKey() {
		k := v.PrivateKey
		cfg.PrivateKey, changed = &k, true
	}
	if info.ListenPort != int(v.ListenPort) {
		p := int(v.ListenPort)
		cfg.ListenPort, changed = &p, true
	}
	if v.MTU != 0 && info.MTU != 0 && info.MTU != v.MTU {
		cfg.MTU, changed = v.MTU, true
	}
	if want := Addresses(v.Network); !sameSet(want, info.Addresses) {
		cfg.Addresses, changed = want, true
	}
	if !changed {
		return 0, nil
	}
	if err := ns.dev.Configure(ctx, cfg); err != nil {
		r.deviceError(ns.value.Name)
		return 0, fmt.Errorf("repair interface of network %q: %w", ns.value.Name, err)
	}
	if count {
		if r.hooks.Repaired != nil {
			r.hooks.Repaired(v.Name, "interface")
		}
		r.log.Warn("drift repaired: interface configuration", "network", v.Name)
	}
	return 1, nil
}

func sameSet(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for _, p := range a {
		if !slices.Contains(b, p) {
			return false
		}
	}
	return true
}

// Run runs the periodic drift check until ctx ends (and an early one after a device
// error).
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.DriftInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.kick:
			// Let a burst of failing ops pass before re-reading the device.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
		if _, err := r.Drift(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("drift check failed", "err", err)
		}
	}
}

// Drift checks every device once against the desired state and repairs differences,
// counting each. The devices are read without the lock the apply path needs; peers an op
// changed meanwhile are left to that op. It returns the number of repairs.
func (r *Reconciler) Drift(ctx context.Context) (int, error) {
	type target struct {
		ns  *netState
		dev wgdev.Device
	}
	r.mu.Lock()
	gen := r.gen
	r.touched = map[string]bool{}
	var targets []target
	var firstErr error
	for _, ns := range r.networks {
		if ns.dev == nil {
			if err := r.openDevice(ctx, ns); err != nil {
				firstErr = err
				continue
			}
		}
		targets = append(targets, target{ns, ns.dev})
	}
	r.mu.Unlock()

	reads := make([][]wgdev.PeerStatus, len(targets))
	readErr := make([]error, len(targets))
	for i, t := range targets {
		reads[i], readErr[i] = t.dev.Peers(ctx)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	touched := r.touched
	r.touched = nil
	if r.gen != gen {
		return 0, firstErr // a snapshot was loaded meanwhile: it synced the devices itself
	}
	total := 0
	for i, t := range targets {
		name := t.ns.value.Name
		if r.networks[name] != t.ns || touched["network/"+name] {
			continue
		}
		if readErr[i] != nil {
			r.deviceError(name)
			firstErr = cmpErr(firstErr, fmt.Errorf("read device of network %q: %w", name, readErr[i]))
			continue
		}
		skip := func(k wirefleet.Key) bool { return touched[wirefleet.PeerKey(name, k)] }
		n, err := r.repair(ctx, t.ns, reads[i], skip, true)
		total += n
		firstErr = cmpErr(firstErr, err)
		m, err := r.repairInterface(ctx, t.ns, true)
		total += m
		firstErr = cmpErr(firstErr, err)
	}
	return total, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Close persists the state and closes the devices (kernel and attached links stay with
// their peers; a userspace device goes away with the process).
func (r *Reconciler) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.cfg.StateDir != "" {
		err = r.checkpointLocked()
	}
	if r.journal != nil {
		_ = r.journal.close()
		r.journal = nil
	}
	for _, ns := range r.networks {
		if ns.dev != nil {
			_ = ns.dev.Close()
			ns.dev = nil
		}
	}
	return err
}
