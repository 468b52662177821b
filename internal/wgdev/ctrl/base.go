package ctrl

import (
	"context"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/link"
)

// Base is the part of a wgdev.Device that the kernel and attach backends share once their
// link is open: the netlink and wgctrl handles, the link, and the Peers driving it. The
// backends embed it and fill in the fields while opening (each opens its link its own way:
// kernel creates or adopts it, attach only finds it); they add Configure.
type Base struct {
	Name    string    // the interface name, as reported by Info
	Backend string    // the backend name, as reported by Info
	Created time.Time // reported by Info

	NL   *netlink.Handle // opened in the link's namespace
	WG   *wgctrl.Client  // opened in the link's namespace
	Link *link.Link
	Ctrl *Peers

	mu     sync.Mutex // guards closed against concurrent Close
	closed bool
}

// ApplyPeers implements wgdev.Device through Ctrl.
func (b *Base) ApplyPeers(ctx context.Context, upsert []wgdev.Peer, remove []wirefleet.Key) error {
	return b.Ctrl.Apply(ctx, upsert, remove)
}

// Peers implements wgdev.Device through Ctrl.
func (b *Base) Peers(ctx context.Context) ([]wgdev.PeerStatus, error) {
	return b.Ctrl.Read(ctx)
}

// Info implements wgdev.Device: key and port from wgctrl, addresses and MTU from netlink.
func (b *Base) Info(ctx context.Context) (wgdev.Info, error) {
	if err := ctx.Err(); err != nil {
		return wgdev.Info{}, err
	}
	pub, port, err := b.Ctrl.Interface()
	if err != nil {
		return wgdev.Info{}, err
	}
	addrs, err := b.Link.Addresses()
	if err != nil {
		return wgdev.Info{}, err
	}
	mtu, err := b.Link.MTU()
	if err != nil {
		return wgdev.Info{}, err
	}
	return wgdev.Info{Name: b.Name, Backend: b.Backend, Index: b.Link.Index, PublicKey: pub, ListenPort: port,
		Addresses: addrs, MTU: mtu, Created: b.Created}, nil
}

// Close releases the handles (safe on a half-opened Base, and more than once). The link
// and its peers stay.
func (b *Base) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var err error
	if b.WG != nil {
		err = b.WG.Close()
	}
	if b.NL != nil {
		b.NL.Close()
	}
	return err
}
