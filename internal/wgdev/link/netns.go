package link

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InNetNS runs fn on an OS thread switched into the network namespace ns (a name under
// /run/netns or a path), or directly when ns is empty.
//
// Sockets, TUN devices and netlink handles belong to the namespace of the thread that
// creates them, so everything that creates one (the TUN, the UDP bind when the device comes
// up or its port changes, the netlink handle) goes through here. The thread is never
// switched back: the goroutine exits still locked, so the runtime throws the thread away
// instead of reusing one in the wrong namespace.
func InNetNS(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go onThrowawayThread(func() {
		var h netns.NsHandle
		var err error
		if strings.Contains(ns, "/") {
			h, err = netns.GetFromPath(ns)
		} else {
			h, err = netns.GetFromName(ns)
		}
		if err != nil {
			errc <- fmt.Errorf("open network namespace %q: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter network namespace %q: %w", ns, err)
			return
		}
		errc <- fn()
	})
	return <-errc
}

// onThrowawayThread runs fn locked to an OS thread that is not the process's main thread and
// exits without unlocking it, so the runtime terminates that thread afterwards. The main
// thread is avoided because it cannot be terminated, and its namespace is the one tools
// such as `ip netns pids` attribute to the whole process.
func onThrowawayThread(fn func()) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// While this goroutine holds the main thread, the new one gets another.
		done := make(chan struct{})
		go func() {
			defer close(done)
			onThrowawayThread(fn)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	// No UnlockOSThread: see above.
	fn()
}
