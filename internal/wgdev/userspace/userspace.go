// Package userspace is the wgdev backend that runs WireGuard inside the process: the
// embedded wireguard-go (golang.zx2c4.com/wireguard) over a real TUN interface, for hosts
// whose kernel has no WireGuard module.
//
// The device serves the standard UAPI socket /var/run/wireguard/<dev>.sock, so the stock
// `wg` tool shows and changes it as it would a kernel device. Peers are applied in process
// through wireguard-go's UAPI set operation: one ApplyPeers is one set transaction, and a
// changed peer gets its new allowed IPs before the stale ones are removed one by one
// ("allowed_ip=-PREFIX"), so it never has none. To know which prefixes are stale without
// reading every peer (O(1) per change at any fleet size), the device keeps the allowed IPs
// it set; a set operation from anyone else on the socket marks that copy dirty, and the
// next apply re-reads the device first.
//
// An apply that brings many new peers (a gateway's first start) creates them first, from
// every CPU, and relaxes the garbage collector while it runs; the set transaction then
// configures and starts them (see createPeersLocked and relaxGC).
//
// The interface, its addresses and the socket go away with Close (or with the process).
package userspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/link"
	"github.com/wirefleet/wirefleet/internal/wgdev/uapi"
)

// Backend is the name reported in wgdev.Info.
const Backend = "userspace"

// DefaultMTU is WireGuard's usual MTU (1500 minus the worst-case IPv6 overhead).
const DefaultMTU = device.DefaultMTU

// SocketDir is where wireguard-go and wg(8) keep UAPI sockets.
const SocketDir = "/var/run/wireguard"

// Config describes the device to create.
type Config struct {
	Name       string        // interface name (≤15 bytes)
	ListenPort int           // 0: a random free port
	PrivateKey wirefleet.Key // zero: none (the device cannot handshake until Configure sets one)
	Addresses  []netip.Prefix
	MTU        int // 0: DefaultMTU
	// NetNS, when set, is the network namespace (a name under /run/netns or a path) in which
	// the interface and the UDP socket are created; tests use it to keep the host clean.
	// Empty: the caller's namespace (production: run the process in the namespace instead,
	// e.g. `ip netns exec`). Limits of NetNS, because wireguard-go's own goroutines run in
	// the caller's namespace: a listen port changed through the UAPI socket (wg set) or an
	// interface taken down and up by someone else rebinds the UDP socket in the caller's
	// namespace, and wireguard-go does not follow MTU changes (Configure through this
	// package rebinds correctly).
	NetNS  string
	Logger *slog.Logger // nil: slog.Default()
}

// Device is a running userspace WireGuard device. It implements wgdev.Device.
type Device struct {
	name    string
	netns   string
	log     *slog.Logger
	created time.Time

	tun  tun.Device
	dev  *device.Device
	nl   *netlink.Handle
	link *link.Link
	uapi net.Listener
	done chan struct{} // closed when the UAPI accept loop has returned

	// dirty is set when someone else sent a set operation on the UAPI socket: the copies
	// below may then be stale and are re-read before use.
	dirty atomic.Bool
	// lastGet is the size of the last get answer, to size the next one's buffer.
	lastGet atomic.Int64

	mu sync.Mutex // serialises applies; guards allowed, pub, port and closed
	// allowed holds the allowed IPs of every peer as this process last set or read them,
	// and owner the peer of each prefix (wireguard-go gives a prefix to one peer only).
	allowed map[wirefleet.Key][]netip.Prefix
	owner   map[netip.Prefix]wirefleet.Key
	pub     wirefleet.Key
	port    int
	closed  bool
}

var _ wgdev.Device = (*Device)(nil)

// Open creates the TUN interface and the WireGuard device, serves the UAPI socket, applies
// the key, port, addresses and MTU, and sets the interface up.
func Open(ctx context.Context, cfg Config) (_ *Device, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Name == "" || len(cfg.Name) > 15 || strings.ContainsAny(cfg.Name, "/ \t\n") {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "interface name %q must be 1 to 15 bytes without '/' or spaces", cfg.Name)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Device{
		name:    cfg.Name,
		netns:   cfg.NetNS,
		log:     cfg.Logger.With("device", cfg.Name, "backend", Backend),
		created: time.Now(),
		allowed: map[wirefleet.Key][]netip.Prefix{},
		owner:   map[netip.Prefix]wirefleet.Key{},
		done:    make(chan struct{}),
	}
	defer func() {
		if err != nil {
			d.teardown()
		}
	}()
	err = link.InNetNS(cfg.NetNS, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("open netlink: %w", err)
		}
		d.nl = h
		if _, err := h.LinkByName(cfg.Name); err == nil {
			return wirefleet.Errorf(wirefleet.KindConflict, "interface %s already exists: remove it (ip link del %s), pick another name, or manage it with -wg-backend attach", cfg.Name, cfg.Name)
		}
		t, err := tun.CreateTUN(cfg.Name, cfg.MTU)
		if err != nil {
			return fmt.Errorf("create TUN interface %s (is /dev/net/tun present and are we root or CAP_NET_ADMIN?): %w", cfg.Name, err)
		}
		d.tun = t
		d.dev = device.NewDevice(t, conn.NewDefaultBind(), wgLogger(d.log, cfg.NetNS != ""))
		var set []byte
		ifc := uapi.Interface{ListenPort: &cfg.ListenPort}
		if !cfg.PrivateKey.IsZero() {
			ifc.PrivateKey = &cfg.PrivateKey
		}
		set = uapi.AppendSet(set, ifc, nil, nil)
		if err := d.dev.IpcSetOperation(bytes.NewReader(set)); err != nil {
			return fmt.Errorf("configure %s: %w", cfg.Name, err)
		}
		// Up here, on this thread, so that the UDP socket is opened in our namespace; the
		// interface-up event wireguard-go gets later is then a no-op.
		if err := d.dev.Up(); err != nil {
			return fmt.Errorf("bring %s up (listen port %d in use?): %w", cfg.Name, cfg.ListenPort, err)
		}
		l, err := link.Open(h, cfg.Name)
		if err != nil {
			return err
		}
		d.link = l
		if len(cfg.Addresses) > 0 {
			if err := l.SetAddresses(cfg.Addresses); err != nil {
				return err
			}
		}
		return l.Up()
	})
	if err != nil {
		return nil, err
	}
	if err := d.serveUAPI(); err != nil {
		return nil, err
	}
	if err := d.refreshLocked(); err != nil {
		return nil, err
	}
	pub := "(none)"
	if !d.pub.IsZero() {
		pub = d.pub.String()
	}
	d.log.Info("userspace WireGuard device up", "listen_port", d.port, "public_key", pub, "socket", SocketDir+"/"+cfg.Name+".sock", "netns", cfg.NetNS)
	return d, nil
}

// serveUAPI listens on /var/run/wireguard/<name>.sock and hands each connection to
// wireguard-go, watching for set operations that are not ours.
func (d *Device) serveUAPI() error {
	f, err := ipc.UAPIOpen(d.name)
	if err != nil {
		return fmt.Errorf("open UAPI socket %s/%s.sock: %w", SocketDir, d.name, err)
	}
	l, err := ipc.UAPIListen(d.name, f)
	f.Close()
	if err != nil {
		return fmt.Errorf("listen on UAPI socket %s/%s.sock: %w", SocketDir, d.name, err)
	}
	d.uapi = l
	go func() {
		defer close(d.done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go d.dev.IpcHandle(&watchConn{Conn: c, dirty: &d.dirty})
		}
	}()
	return nil
}

// refreshLocked re-reads the whole device into the copies the fast path uses.
func (d *Device) refreshLocked() error {
	d.dirty.Store(false)
	st, err := d.get()
	if err != nil {
		d.dirty.Store(true)
		return err
	}
	clear(d.allowed)
	clear(d.owner)
	for _, p := range st.Peers {
		d.setAllowedLocked(p.PublicKey, wgdev.Normalize(p.AllowedIPs))
	}
	d.pub = st.PrivateKey.PublicKey()
	if st.PrivateKey.IsZero() {
		d.pub = wirefleet.Key{}
	}
	d.port = st.ListenPort
	return nil
}

func (d *Device) get() (uapi.State, error) {
	var buf bytes.Buffer
	// Sized like the last answer: a 10k-peer device answers ~3 MB, and growing a buffer
	// there by doubling copies it a dozen times.
	buf.Grow(int(d.lastGet.Load()))
	if err := d.dev.IpcGetOperation(&buf); err != nil {
		return uapi.State{}, fmt.Errorf("read %s: %w", d.name, err)
	}
	d.lastGet.Store(int64(buf.Len()))
	st, err := uapi.ParseString(buf.String())
	if err != nil {
		return uapi.State{}, fmt.Errorf("read %s: %w", d.name, err)
	}
	return st, nil
}

// ApplyPeers implements wgdev.Device with one UAPI set transaction.
func (d *Device) ApplyPeers(ctx context.Context, upsert []wgdev.Peer, remove []wirefleet.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := wgdev.ValidatePeers(upsert, remove); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed(d.name)
	}
	if d.dirty.Load() {
		if err := d.refreshLocked(); err != nil {
			return err
		}
	}
	if fresh := d.freshLocked(upsert); len(fresh) > 0 {
		if len(fresh) >= bulkGCMin {
			defer relaxGC()()
		}
		if err := d.createPeersLocked(fresh); err != nil {
			d.dirty.Store(true)
			return fmt.Errorf("apply %d peers on %s: %w", len(upsert), d.name, err)
		}
	}
	changes := make([]uapi.Change, len(upsert))
	for i, p := range upsert {
		want := wgdev.Normalize(p.AllowedIPs)
		p.AllowedIPs = want
		changes[i] = uapi.Change{Peer: p, Stale: wgdev.Stale(d.allowed[p.PublicKey], want)}
		d.setAllowedLocked(p.PublicKey, want)
	}
	for _, k := range remove {
		d.setAllowedLocked(k, nil)
	}
	set := uapi.AppendSet(nil, uapi.Interface{}, changes, remove)
	if err := d.dev.IpcSetOperation(bytes.NewReader(set)); err != nil {
		// wireguard-go applies a set line by line: part of it may have been applied.
		d.dirty.Store(true)
		return fmt.Errorf("apply %d peers, remove %d on %s: %w", len(upsert), len(remove), d.name, err)
	}
	return nil
}

// parallelCreateMin is the number of new peers from which createPeersLocked spreads their
// creation over the CPUs; below it the set operation creates them.
const parallelCreateMin = 64

// freshLocked returns the keys of up that the device does not have yet (none when up is
// too short for createPeersLocked to bother).
func (d *Device) freshLocked(up []wgdev.Peer) []device.NoisePublicKey {
	if len(up) < parallelCreateMin {
		return nil
	}
	var fresh []device.NoisePublicKey
	seen := make(map[wirefleet.Key]bool, len(up))
	for _, p := range up {
		k := device.NoisePublicKey(p.PublicKey)
		if !seen[p.PublicKey] && p.PublicKey != d.pub && d.dev.LookupPeer(k) == nil {
			fresh = append(fresh, k)
		}
		seen[p.PublicKey] = true // a key listed twice is created once; the set updates it
	}
	return fresh
}

// createPeersLocked creates the peers fresh, spread over GOMAXPROCS goroutines. A new
// wireguard-go peer is ~30 KB of queues, timers and locks to allocate and fault in; the
// static-static X25519 that dominated it is deferred to the first handshake by the patched
// wireguard-go in third_party/. Spread over two CPUs, a first start with 50k peers took
// 16 % less time (docs/benchmarks/replication.md). The set operation that follows
// configures the new peers and starts them, as for any peer.
func (d *Device) createPeersLocked(fresh []device.NoisePublicKey) error {
	workers := min(runtime.GOMAXPROCS(0), len(fresh)/parallelCreateMin)
	if workers < 2 {
		return nil
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		chunk := fresh[w*len(fresh)/workers : (w+1)*len(fresh)/workers]
		wg.Go(func() {
			for _, k := range chunk {
				if _, err := d.dev.NewPeer(k); err != nil {
					errs[w] = fmt.Errorf("create peer %s: %w", wirefleet.Key(k), err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// bulkGCMin is the number of new peers in one apply from which the GC target is relaxed.
const bulkGCMin = 1024

// bulkGCPercent is the GC target while a bulk apply runs.
const bulkGCPercent = 400

// relaxGC raises the garbage collector's target (GOGC) to bulkGCPercent until the returned
// function is called, unless it is already higher or off. wireguard-go allocates ~30 KB per
// peer that stays alive (queues of pointers, timers, goroutines), so during a bulk creation
// nearly every byte allocated is live: each GC cycle re-scans the whole growing device for
// almost no garbage, and at 50k peers that was a quarter of a cold start's CPU. The heap
// does not grow further for it, since there is little garbage to hold back. Nested and
// concurrent calls (several devices) keep the target raised until the last one returns.
func relaxGC() (restore func()) {
	bulkGC.Lock()
	defer bulkGC.Unlock()
	if bulkGC.n == 0 {
		bulkGC.prev = debug.SetGCPercent(bulkGCPercent)
		if bulkGC.prev < 0 || bulkGC.prev >= bulkGCPercent {
			debug.SetGCPercent(bulkGC.prev)
		}
	}
	bulkGC.n++
	return func() {
		bulkGC.Lock()
		defer bulkGC.Unlock()
		if bulkGC.n--; bulkGC.n == 0 {
			debug.SetGCPercent(bulkGC.prev)
		}
	}
}

var bulkGC struct {
	sync.Mutex
	n, prev int
}

// setAllowedLocked records that peer k now holds exactly want (nil: k is gone). A prefix
// given to k is taken from the peer that held it, as wireguard-go does. Cost: O(prefixes
// of the peers involved), independent of the number of peers.
func (d *Device) setAllowedLocked(k wirefleet.Key, want []netip.Prefix) {
	for _, a := range d.allowed[k] {
		if d.owner[a] == k {
			delete(d.owner, a)
		}
	}
	if want == nil {
		delete(d.allowed, k)
		return
	}
	for _, a := range want {
		if prev, ok := d.owner[a]; ok && prev != k {
			d.allowed[prev] = slices.DeleteFunc(slices.Clone(d.allowed[prev]), func(p netip.Prefix) bool { return p == a })
		}
		d.owner[a] = k
	}
	d.allowed[k] = want
}

// Peers implements wgdev.Device.
func (d *Device) Peers(ctx context.Context) ([]wgdev.PeerStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.isClosed() {
		return nil, errClosed(d.name)
	}
	st, err := d.get()
	if err != nil {
		return nil, err
	}
	return st.Peers, nil
}

// Configure implements wgdev.Device: key and port through UAPI (the port change rebinds
// the UDP socket in the device's namespace), addresses and MTU through netlink.
func (d *Device) Configure(ctx context.Context, cfg wgdev.Interface) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed(d.name)
	}
	return link.InNetNS(d.netns, func() error {
		if cfg.PrivateKey != nil || cfg.ListenPort != nil {
			set := uapi.AppendSet(nil, uapi.Interface{PrivateKey: cfg.PrivateKey, ListenPort: cfg.ListenPort}, nil, nil)
			if err := d.dev.IpcSetOperation(bytes.NewReader(set)); err != nil {
				d.dirty.Store(true)
				return fmt.Errorf("configure %s: %w", d.name, err)
			}
			if err := d.refreshLocked(); err != nil {
				return err
			}
		}
		if cfg.Addresses != nil {
			if err := d.link.SetAddresses(cfg.Addresses); err != nil {
				return err
			}
		}
		if cfg.MTU != 0 {
			if err := d.link.SetMTU(cfg.MTU); err != nil {
				return err
			}
		}
		return nil
	})
}

// Info implements wgdev.Device.
func (d *Device) Info(ctx context.Context) (wgdev.Info, error) {
	if err := ctx.Err(); err != nil {
		return wgdev.Info{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return wgdev.Info{}, errClosed(d.name)
	}
	if d.dirty.Load() {
		if err := d.refreshLocked(); err != nil {
			return wgdev.Info{}, err
		}
	}
	addrs, err := d.link.Addresses()
	if err != nil {
		return wgdev.Info{}, err
	}
	mtu, err := d.link.MTU()
	if err != nil {
		return wgdev.Info{}, err
	}
	return wgdev.Info{
		Name: d.name, Backend: Backend, Index: d.link.Index,
		PublicKey: d.pub, ListenPort: d.port, Addresses: addrs, MTU: mtu, Created: d.created,
	}, nil
}

// Close removes the interface (with its addresses) and the UAPI socket.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.teardown()
	d.log.Info("userspace WireGuard device removed")
	return nil
}

func (d *Device) teardown() {
	if d.uapi != nil {
		d.uapi.Close() // unlinks the socket file
		<-d.done
	}
	if d.dev != nil {
		d.dev.Close() // closes the TUN, which deletes the interface
	} else if d.tun != nil {
		d.tun.Close()
	}
	if d.nl != nil {
		d.nl.Close()
	}
	// The listener unlinks the socket; a crash-left one is removed on the next UAPIOpen.
	if d.uapi != nil {
		if err := os.Remove(SocketDir + "/" + d.name + ".sock"); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("remove UAPI socket", "err", err)
		}
	}
}

func (d *Device) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

func errClosed(name string) error {
	return wirefleet.Errorf(wirefleet.KindUnavailable, "device %s is closed", name)
}

// Wait returns a channel closed when wireguard-go stops (Close, or the TUN went away).
func (d *Device) Wait() <-chan struct{} { return d.dev.Wait() }
