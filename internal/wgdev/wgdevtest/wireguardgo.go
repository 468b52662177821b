package wgdevtest

import (
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

// StartWireguardGo runs the stock wireguard-go (Debian's package) in the foreground inside
// namespace ns, creating the userspace device name there, and waits for its UAPI socket.
// The process is stopped by the returned function or at cleanup, which removes the device
// and the socket. Tests of the wgctrl code paths (kernel, attach) drive it as they would a
// kernel device.
func StartWireguardGo(t testing.TB, ns *testenv.NetNS, name string) (stop func()) {
	t.Helper()
	testenv.RequireTools(t, "wireguard-go")
	cmd := ns.Command("wireguard-go", "-f", name)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start wireguard-go: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(stop)
	sock := "/var/run/wireguard/" + name + ".sock"
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return stop
		}
		select {
		case <-exited:
			t.Fatalf("wireguard-go %s exited early:\n%s", name, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go %s: no socket %s after 10s:\n%s", name, sock, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
