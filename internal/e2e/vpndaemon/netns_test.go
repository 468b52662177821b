package vpndaemon

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetNS runs fn on a fresh OS thread switched into the named network namespace. Sockets
// belong to the namespace of the thread that creates them, so the test process can talk
// to a gateway listening on 127.0.0.1 inside the namespace, or open a TCP connection from
// host B's side. The thread is switched back afterwards; if that fails it stays locked
// and the runtime discards it with the goroutine (the main thread, which Go never discards,
// must not be left in a test namespace: the namespace's cleanup kills every process in it).
func inNetNS[T any](ns string, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var zero T
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{zero, fmt.Errorf("current netns: %w", err)}
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			ch <- result{zero, fmt.Errorf("open netns %s: %w", ns, err)}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ch <- result{zero, fmt.Errorf("enter netns %s: %w", ns, err)}
			return
		}
		v, err := fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

// dialer returns a DialContext that connects from inside ns.
func dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return inNetNS(ns, func() (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		})
	}
}

// listen opens a listener inside ns.
func listen(ns, network, addr string) (net.Listener, error) {
	return inNetNS(ns, func() (net.Listener, error) { return net.Listen(network, addr) })
}
