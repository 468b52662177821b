// Package testenv decides whether a test that needs the real machine (root, network
// namespaces, TUN, external tools such as wg, wireguard-go or openvpn) can run, and builds
// the network namespaces such tests use.
//
// The rule of the project: with CI=true a test that cannot run fails; elsewhere it skips
// with the reason. Under -short (the race-enabled unit pass) privileged tests are skipped by
// design: `make test` runs them in its second, non-short pass.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where nothing may be skipped silently.
func InCI() bool { return os.Getenv("CI") == "true" }

// unavailable fails the test in CI and skips it elsewhere.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("cannot run in CI: %s", why)
	}
	t.Skipf("skipping: %s (set CI=true to make this a failure)", why)
}

// Privileged marks a test that needs root and the given external tools. It skips under
// -short, and otherwise fails (CI) or skips (elsewhere) when the machine lacks something.
func Privileged(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged test: runs in the non-short pass of make test")
	}
	if os.Geteuid() != 0 {
		unavailable(t, "needs root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		unavailable(t, "needs /dev/net/tun: "+err.Error())
	}
	RequireTools(t, append([]string{"ip"}, tools...)...)
}

// RequireTools fails (CI) or skips (elsewhere) when a tool is not on PATH.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, fmt.Sprintf("needs %s on PATH (make test installs it)", tool))
		}
	}
}

var seq atomic.Int64

// UniqueName returns a name of at most 15 characters (an interface name limit) made of
// prefix, the process id and a counter, unique across concurrently running test binaries.
func UniqueName(prefix string) string {
	n := fmt.Sprintf("%s%d%d", prefix, os.Getpid()%100000, seq.Add(1))
	if len(n) > 15 {
		n = n[len(n)-15:]
	}
	return n
}

// Run runs a command and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
