package enabler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// GatewayService is what LocalGateway reads from the control plane.
type GatewayService interface {
	GetNetwork(ctx context.Context, name string) (wirefleet.Network, error)
	GetPeer(ctx context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error)
	ListPeers(ctx context.Context, f control.PeerFilter) (control.PeerPage, error)
	Head(ctx context.Context) (uint64, wirefleet.Hash, error)
	OpsAfter(ctx context.Context, after uint64, limit int) ([]wirefleet.Op, error)
	WaitOps(ctx context.Context, after uint64) error
}

var _ GatewayService = (*control.Service)(nil)

// LocalGateway puts one network's active peers on a device in the same process as the
// store: the single-process shape of upstream's container.
//
// TEMPORARY: this is the small loop the enabler uses until the fleet's own gateway
// (internal/reconcile following the op log) can run in process; it does the same job on a
// smaller scale: SyncPeer applies one peer in O(1) (called synchronously by the handlers),
// Reconcile is the full diff (restore on start, drift repair), and Run follows the op log
// for changes made by anyone else (the REST API, the expiry sweeper).
//
// Ownership: only device peers whose allowed IPs lie inside the network's prefixes are
// removed when the store does not know them; anything else on the device is left alone.
type LocalGateway struct {
	svc     GatewayService
	dev     wgdev.Device
	network string
	log     *slog.Logger
	// RepairEvery is the period of the full diff in Run (default 30 s).
	RepairEvery time.Duration

	mu sync.Mutex // serialises each store read with its device change, so that the last read wins
}

var _ Gateway = (*LocalGateway)(nil)

// NewLocalGateway returns a gateway for network on dev.
func NewLocalGateway(svc GatewayService, dev wgdev.Device, network string, log *slog.Logger) *LocalGateway {
	if log == nil {
		log = slog.Default()
	}
	return &LocalGateway{svc: svc, dev: dev, network: network, log: log, RepairEvery: 30 * time.Second}
}

// devicePeer is the device form of a stored peer: its addresses as /32 and /128, its
// preshared key and the network's keepalive.
func devicePeer(n wirefleet.Network, p wirefleet.Peer) wgdev.Peer {
	return wgdev.Peer{
		PublicKey:           p.PublicKey,
		PresharedKey:        p.PresharedKey.Ptr(),
		AllowedIPs:          wgdev.Normalize(p.AllowedIPs()),
		PersistentKeepalive: time.Duration(n.Keepalive) * time.Second,
	}
}

// SyncPeer makes the device match the stored peer pub: present when active, absent when
// disabled, expired or unknown.
func (g *LocalGateway) SyncPeer(ctx context.Context, pub wirefleet.Key) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.syncPeerLocked(ctx, pub)
}

func (g *LocalGateway) syncPeerLocked(ctx context.Context, pub wirefleet.Key) error {
	p, err := g.svc.GetPeer(ctx, g.network, pub)
	if wirefleet.IsKind(err, wirefleet.KindNotFound) || (err == nil && !p.Active()) {
		return g.dev.ApplyPeers(ctx, nil, []wirefleet.Key{pub})
	}
	if err != nil {
		return fmt.Errorf("read peer %s: %w", pub, err)
	}
	n, err := g.svc.GetNetwork(ctx, g.network)
	if err != nil {
		return fmt.Errorf("read network %q: %w", g.network, err)
	}
	return g.dev.ApplyPeers(ctx, []wgdev.Peer{devicePeer(n, p)}, nil)
}

// syncReplaced applies a peer.replace: the old key leaves the device as the new one (read
// from the store, like SyncPeer) arrives, in one device transaction.
func (g *LocalGateway) syncReplaced(ctx context.Context, old, pub wirefleet.Key) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, err := g.svc.GetPeer(ctx, g.network, pub)
	if wirefleet.IsKind(err, wirefleet.KindNotFound) || (err == nil && !p.Active()) {
		return g.dev.ApplyPeers(ctx, nil, []wirefleet.Key{old, pub})
	}
	if err != nil {
		return fmt.Errorf("read peer %s: %w", pub, err)
	}
	n, err := g.svc.GetNetwork(ctx, g.network)
	if err != nil {
		return fmt.Errorf("read network %q: %w", g.network, err)
	}
	return g.dev.ApplyPeers(ctx, []wgdev.Peer{devicePeer(n, p)}, []wirefleet.Key{old})
}

// ReconcileResult counts what a full diff changed.
type ReconcileResult struct {
	Desired, Upserted, Removed, Failed int
}

// Reconcile makes the device's peers inside the network's prefixes exactly the active
// peers of the store. Each peer is applied independently: a peer the device refuses is
// logged and counted in Failed, and the others are still applied. The error is for a
// store or device that cannot be read at all.
func (g *LocalGateway) Reconcile(ctx context.Context) (ReconcileResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var res ReconcileResult
	n, err := g.svc.GetNetwork(ctx, g.network)
	if err != nil {
		return res, fmt.Errorf("read network %q: %w", g.network, err)
	}
	desired := make(map[wirefleet.Key]wgdev.Peer)
	t, f := true, false
	filter := control.PeerFilter{Network: g.network, Enabled: &t, Expired: &f, Limit: control.MaxPageSize}
	for {
		page, err := g.svc.ListPeers(ctx, filter)
		if err != nil {
			return res, fmt.Errorf("list peers of network %q: %w", g.network, err)
		}
		for _, p := range page.Peers {
			desired[p.PublicKey] = devicePeer(n, p)
		}
		if page.NextCursor == "" {
			break
		}
		filter.Cursor = page.NextCursor
	}
	res.Desired = len(desired)
	actual, err := g.dev.Peers(ctx)
	if err != nil {
		return res, fmt.Errorf("read the device's peers: %w", err)
	}
	have := make(map[wirefleet.Key]wgdev.Peer, len(actual))
	for _, a := range actual {
		have[a.PublicKey] = a.Peer
	}
	var upsert []wgdev.Peer
	for k, want := range desired {
		if got, ok := have[k]; !ok || !samePeer(got, want) {
			upsert = append(upsert, want)
		}
	}
	owned := wgdev.Ownership(n.Prefixes())
	var remove []wirefleet.Key
	for _, a := range actual {
		if _, ok := desired[a.PublicKey]; !ok && owned.Owns(a.AllowedIPs) {
			remove = append(remove, a.PublicKey)
		}
	}
	// Removals first: a stale peer may hold an address a restored one needs.
	if len(remove) > 0 {
		if err := g.dev.ApplyPeers(ctx, nil, remove); err != nil {
			return res, fmt.Errorf("remove %d unknown peers from the device: %w", len(remove), err)
		}
		res.Removed = len(remove)
	}
	if len(upsert) == 0 {
		return res, nil
	}
	if err := g.dev.ApplyPeers(ctx, upsert, nil); err == nil {
		res.Upserted = len(upsert)
		return res, nil
	}
	// One bad record must not keep the others off the device: apply them one by one.
	for _, p := range upsert {
		if err := g.dev.ApplyPeers(ctx, []wgdev.Peer{p}, nil); err != nil {
			res.Failed++
			g.log.Error("enabler: cannot restore a client on the device; the others are restored", "network", g.network, "public_key", p.PublicKey, "err", err)
			continue
		}
		res.Upserted++
	}
	return res, nil
}

func samePeer(a, b wgdev.Peer) bool {
	pskA, pskB := wirefleet.Key{}, wirefleet.Key{}
	if a.PresharedKey != nil {
		pskA = *a.PresharedKey
	}
	if b.PresharedKey != nil {
		pskB = *b.PresharedKey
	}
	return pskA == pskB &&
		wgdev.KeepaliveSeconds(a.PersistentKeepalive) == wgdev.KeepaliveSeconds(b.PersistentKeepalive) &&
		slices.Equal(wgdev.Normalize(a.AllowedIPs), wgdev.Normalize(b.AllowedIPs))
}

// opBatch bounds one read of the op log.
const opBatch = 1000

// Run follows the op log from the current head until ctx is done: each peer op of the
// network is applied with SyncPeer (O(1)), a network op or a gap in the log (compaction)
// triggers a full Reconcile, and a full Reconcile also runs every RepairEvery to repair
// drift (someone running `wg set` by hand). It returns nil on cancellation.
func (g *LocalGateway) Run(ctx context.Context) error {
	seq, _, err := g.svc.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the op log head: %w", err)
	}
	every := g.RepairEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	repair := time.NewTicker(every)
	defer repair.Stop()
	for {
		wctx, cancel := context.WithTimeout(ctx, every)
		werr := g.svc.WaitOps(wctx, seq)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-repair.C:
			g.repair(ctx)
		default:
		}
		if werr != nil {
			if !errors.Is(werr, context.DeadlineExceeded) {
				g.log.Warn("enabler: waiting for the op log failed", "err", werr)
				g.sleep(ctx, time.Second)
			}
			continue
		}
		next, err := g.follow(ctx, seq)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			g.log.Warn("enabler: following the op log failed; repairing with a full diff", "err", err)
			g.repair(ctx)
			if h, _, herr := g.svc.Head(ctx); herr == nil {
				next = h
			}
			g.sleep(ctx, time.Second)
		}
		seq = next
	}
}

func (g *LocalGateway) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (g *LocalGateway) repair(ctx context.Context) {
	res, err := g.Reconcile(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		g.log.Error("enabler: full diff of the device failed", "network", g.network, "err", err)
	case res.Upserted+res.Removed+res.Failed > 0:
		g.log.Info("enabler: device repaired", "network", g.network, "upserted", res.Upserted, "removed", res.Removed, "failed", res.Failed)
	}
}

// follow applies the ops after seq and returns the last seq it handled.
func (g *LocalGateway) follow(ctx context.Context, seq uint64) (uint64, error) {
	for {
		ops, err := g.svc.OpsAfter(ctx, seq, opBatch)
		if err != nil {
			return seq, err
		}
		if len(ops) == 0 {
			return seq, nil
		}
		if ops[0].Seq != seq+1 {
			// The log no longer reaches back to seq: catch up with a full diff.
			g.repair(ctx)
			return ops[len(ops)-1].Seq, nil
		}
		for _, op := range ops {
			g.applyOp(ctx, op)
			seq = op.Seq
		}
		if len(ops) < opBatch {
			return seq, nil
		}
	}
}

func (g *LocalGateway) applyOp(ctx context.Context, op wirefleet.Op) {
	switch op.Type {
	case wirefleet.OpPeerPut, wirefleet.OpPeerDelete:
		network, pub, err := wirefleet.ParsePeerKey(op.Key)
		if err != nil || network != g.network {
			return
		}
		if err := g.SyncPeer(ctx, pub); err != nil && ctx.Err() == nil {
			g.log.Error("enabler: cannot apply a peer change to the device", "network", g.network, "public_key", pub, "seq", op.Seq, "err", err)
		}
	case wirefleet.OpPeerReplace:
		var v wirefleet.PeerReplaceValue
		if err := json.Unmarshal(op.Value, &v); err != nil || v.Network != g.network {
			return
		}
		if err := g.syncReplaced(ctx, v.Replaces, v.PublicKey); err != nil && ctx.Err() == nil {
			g.log.Error("enabler: cannot apply a peer replacement to the device", "network", g.network, "public_key", v.PublicKey, "replaces", v.Replaces, "seq", op.Seq, "err", err)
		}
	case wirefleet.OpNetworkPut, wirefleet.OpNetworkDelete:
		if op.Key == wirefleet.NetworkKey(g.network) {
			g.repair(ctx)
		}
	}
}
