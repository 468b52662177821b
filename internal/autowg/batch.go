package autowg

import (
	"context"
	"errors"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// maxApplyBatch bounds how many registrations share one device write.
const maxApplyBatch = 256

// errStopped answers registrations that arrive after the applier stopped (shutdown).
var errStopped = errors.New("the server is shutting down")

// batchApplier applies registrations to the interface in groups: the registrations that
// arrive while one device write is in flight share the next one, as the store's group
// commit shares an fsync. On an attached interface a device write is a round trip to its
// owner (a UAPI connection to wireguard-go, or netlink), serialised per device; one per
// registration made the device the bottleneck of a burst and left the CPUs idle. Each
// registration still gets its own answer: a group the device refuses is applied again one
// registration at a time, so one refused peer fails alone.
type batchApplier struct {
	dev     wgdev.Device
	reqs    chan *applyReq
	stopped chan struct{}
}

type applyReq struct {
	peer   wgdev.Peer
	remove []wirefleet.Key
	done   chan error
}

func newBatchApplier(dev wgdev.Device) *batchApplier {
	return &batchApplier{dev: dev, reqs: make(chan *applyReq, maxApplyBatch), stopped: make(chan struct{})}
}

// ApplyRegistration implements compat/autowg.Applier. The server side of a registration:
// the device's addresses only, no endpoint, no keepalive (the device initiates and keeps
// the NAT mapping alive). It waits for the device write even if ctx ends meanwhile, so
// that the caller never undoes a registration the device is taking.
func (a *batchApplier) ApplyRegistration(ctx context.Context, p wirefleet.Peer, removed []wirefleet.Key) error {
	r := &applyReq{peer: wgdev.Peer{PublicKey: p.PublicKey, AllowedIPs: p.AllowedIPs()}, remove: removed, done: make(chan error, 1)}
	select {
	case a.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stopped:
		return errStopped
	}
	select {
	case err := <-r.done:
		return err
	case <-a.stopped:
		// Run returned: it answered everything it took; what is still queued never runs.
		select {
		case err := <-r.done:
			return err
		default:
			return errStopped
		}
	}
}

// Run applies queued registrations until ctx ends.
func (a *batchApplier) Run(ctx context.Context) error {
	defer close(a.stopped)
	for {
		var batch []*applyReq
		select {
		case r := <-a.reqs:
			batch = append(batch, r)
		case <-ctx.Done():
			return nil
		}
	more:
		for len(batch) < maxApplyBatch {
			select {
			case r := <-a.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		a.apply(context.WithoutCancel(ctx), batch)
	}
}

// apply writes batch in one device write, or one write per registration when two of them
// touch the same key (a key freed by one and taken by the other) or the group is refused.
func (a *batchApplier) apply(ctx context.Context, batch []*applyReq) {
	if len(batch) > 1 && distinctKeys(batch) {
		up := make([]wgdev.Peer, 0, len(batch))
		var rm []wirefleet.Key
		for _, r := range batch {
			up = append(up, r.peer)
			rm = append(rm, r.remove...)
		}
		if err := a.dev.ApplyPeers(ctx, up, rm); err == nil {
			for _, r := range batch {
				r.done <- nil
			}
			return
		}
	}
	for _, r := range batch {
		r.done <- a.dev.ApplyPeers(ctx, []wgdev.Peer{r.peer}, r.remove)
	}
}

func distinctKeys(batch []*applyReq) bool {
	seen := make(map[wirefleet.Key]bool, len(batch))
	for _, r := range batch {
		for _, k := range append([]wirefleet.Key{r.peer.PublicKey}, r.remove...) {
			if seen[k] {
				return false
			}
			seen[k] = true
		}
	}
	return true
}
