package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
)

// NetNS is a network namespace made for one test; it is deleted in t.Cleanup, after every
// process still inside has been killed.
type NetNS struct{ Name string }

// NewNetNS creates a namespace with loopback up.
func NewNetNS(t testing.TB, prefix string) *NetNS {
	t.Helper()
	ns := &NetNS{Name: UniqueName(prefix)}
	Run(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(func() {
		if out, _ := exec.Command("ip", "netns", "pids", ns.Name).Output(); len(out) > 0 {
			_ = exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c", "kill -9 $(ip netns pids "+ns.Name+") 2>/dev/null").Run()
		}
		_ = exec.Command("ip", "netns", "del", ns.Name).Run()
	})
	ns.Exec(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Exec runs a command inside the namespace and fails the test on error.
func (ns *NetNS) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Command returns an unstarted command that runs inside the namespace.
func (ns *NetNS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Link connects two namespaces with a veth pair and gives each end an address (CIDR).
// Use the test ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15,
// 2001:db8::/32).
func Link(t testing.TB, a *NetNS, addrA string, b *NetNS, addrB string) (ifA, ifB string) {
	t.Helper()
	ifA, ifB = UniqueName("va"), UniqueName("vb")
	Run(t, "ip", "link", "add", ifA, "netns", a.Name, "type", "veth", "peer", "name", ifB, "netns", b.Name)
	a.Exec(t, "ip", "addr", "add", addrA, "dev", ifA)
	a.Exec(t, "ip", "link", "set", ifA, "up")
	b.Exec(t, "ip", "addr", "add", addrB, "dev", ifB)
	b.Exec(t, "ip", "link", "set", ifB, "up")
	return ifA, ifB
}

// DialContext opens a connection from inside the namespace (a socket belongs to the
// namespace of the thread that creates it), so a test's HTTP client can reach addresses
// that exist only there: use it as http.Transport.DialContext. The thread is switched back
// after, or left locked so that the runtime discards it.
func (ns *NetNS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns.Name)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ch <- result{nil, err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// Dialer returns a DialContext that opens connections from inside the namespace through a
// few goroutines that stay in it (their OS threads are switched once and end with them):
// cheaper than DialContext, which switches a thread in and out for every connection, where
// a benchmark opens thousands. Its goroutines stop in t.Cleanup.
func (ns *NetNS) Dialer(t testing.TB) func(ctx context.Context, network, addr string) (net.Conn, error) {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	type request struct {
		ctx           context.Context
		network, addr string
		res           chan result
	}
	reqs := make(chan request)
	quit := make(chan struct{})
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { close(quit); h.Close() })
	const workers = 4
	ready := make(chan error, workers)
	var worker func()
	worker = func() {
		// Never unlocked: the thread ends with the goroutine instead of going back to the
		// scheduler in the wrong namespace. Not the main thread, though: Go cannot end it,
		// and a main thread left in the namespace puts the whole test process in
		// `ip netns pids`, which NewNetNS's cleanup kills.
		runtime.LockOSThread()
		if syscall.Gettid() == os.Getpid() {
			go worker()
			runtime.UnlockOSThread()
			return
		}
		if err := netns.Set(h); err != nil {
			ready <- err
			return
		}
		ready <- nil
		var d net.Dialer
		for {
			select {
			case <-quit:
				return
			case r := <-reqs:
				c, err := d.DialContext(r.ctx, r.network, r.addr)
				r.res <- result{c, err}
			}
		}
	}
	for range workers {
		go worker()
	}
	for range workers {
		if err := <-ready; err != nil {
			t.Fatalf("enter namespace %s: %v", ns.Name, err)
		}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		r := request{ctx, network, addr, make(chan result, 1)}
		select {
		case reqs <- r:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-quit:
			return nil, net.ErrClosed
		}
		res := <-r.res
		return res.c, res.err
	}
}
