package openvpn

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wirefleet/wirefleet"
)

const (
	cnA = "kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s="
	cnB = "DDoG0rDvZ1YufRdDHk37MdgOX+lBgKoBzgOQKJ5dzy4="
	cnC = "YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E="
)

// staleSocket leaves a socket file nobody listens on, as a crashed OpenVPN does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
}

type fleetFixture struct {
	dir         string
	alpha, beta *fakeServer
	fleet       *Fleet
	budget      time.Duration
}

// newFleetFixture: two healthy processes (alpha with notifications interleaved), one
// that never answers, one stale socket, and files that are not sockets.
func newFleetFixture(t *testing.T) *fleetFixture {
	dir := t.TempDir()
	f := &fleetFixture{dir: dir, budget: 300 * time.Millisecond}
	f.alpha = newFakeServer(t, dir, "alpha", fakeNoise)
	f.beta = newFakeServer(t, dir, "beta", 0)
	newFakeServer(t, dir, "hung", fakeSilent)
	staleSocket(t, filepath.Join(dir, "stale.sock"))
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.sock"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.alpha.setClients(
		fakeClient{cn: cnA, real: "192.0.2.2:1194", v4: "198.51.100.2", v6: "2001:db8:1::1000", rx: 10, tx: 20, since: 1795453665, id: 1},
		fakeClient{cn: "UNDEF", real: "192.0.2.9:1194", since: 1795453665, id: 2},
		fakeClient{cn: cnB, real: "192.0.2.3:1194", v4: "198.51.100.3", since: 1795453665, id: 3},
	)
	f.beta.setClients(
		fakeClient{cn: cnA, real: "192.0.2.4:1194", v4: "198.18.0.2", v6: "2001:db8:2::1000", rx: 30, tx: 40, since: 1795453665, id: 7},
		fakeClient{cn: cnC, real: "[2001:db8:ff::5]:1194", v4: "198.18.0.3", v6: "2001:db8:2::1001", since: 1795453665, id: 8},
	)
	f.fleet = NewFleet(FleetConfig{Dir: dir, Timeout: f.budget})
	return f
}

type row struct{ Process, CN, V4, V6 string }

func rows(cs []Connection) []row {
	var out []row
	for _, c := range cs {
		v4, v6 := "", ""
		if c.VirtualIPv4.IsValid() {
			v4 = c.VirtualIPv4.String()
		}
		if c.VirtualIPv6.IsValid() {
			v6 = c.VirtualIPv6.String()
		}
		out = append(out, row{c.Process, c.CommonName, v4, v6})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Process+out[i].CN < out[j].Process+out[j].CN })
	return out
}

func TestFleetConnections(t *testing.T) {
	f := newFleetFixture(t)
	start := time.Now()
	cs, err := f.fleet.Connections(context.Background())
	took := time.Since(start)
	want := []row{
		{"alpha", cnB, "198.51.100.3", ""},
		{"alpha", cnA, "198.51.100.2", "2001:db8:1::1000"},
		{"beta", cnC, "198.18.0.3", "2001:db8:2::1001"},
		{"beta", cnA, "198.18.0.2", "2001:db8:2::1000"},
	}
	if diff := cmp.Diff(want, rows(cs)); diff != "" {
		t.Errorf("connections (-want +got):\n%s", diff)
	}
	// The hung and the stale process are reported, not fatal.
	if err == nil || !strings.Contains(err.Error(), "hung:") || !strings.Contains(err.Error(), "stale:") {
		t.Errorf("err = %v, want it to name hung and stale", err)
	}
	if took > f.budget+500*time.Millisecond {
		t.Errorf("took %v with a %v budget", took, f.budget)
	}
	errs := f.fleet.ManagementErrors()
	if errs[ErrorKey{"hung", "status"}] != 1 || errs[ErrorKey{"stale", "status"}] != 1 || errs[ErrorKey{"alpha", "status"}] != 0 {
		t.Errorf("management errors = %v", errs)
	}
	if n, _ := f.fleet.ClientCount(context.Background()); n != 4 {
		t.Errorf("client count = %d, want 4", n)
	}
}

func TestFleetDisconnect(t *testing.T) {
	f := newFleetFixture(t)
	ctx := context.Background()
	n, err := f.fleet.Disconnect(ctx, cnA)
	if n != 2 {
		t.Errorf("killed %d, want 2 (one per healthy process)", n)
	}
	if err == nil || !strings.Contains(err.Error(), "hung:") {
		t.Errorf("err = %v, want it to name the hung process", err)
	}
	cs, _ := f.fleet.Connections(ctx)
	for _, c := range cs {
		if c.CommonName == cnA {
			t.Errorf("%s still connected to %s", cnA, c.Process)
		}
	}
	if len(cs) != 2 {
		t.Errorf("%d connections left, want 2", len(cs))
	}
	// Nobody knows the CN: not an error from the healthy processes.
	n, _ = f.fleet.Disconnect(ctx, "bm9ib2R5+/8=")
	if n != 0 {
		t.Errorf("killed %d unknown clients", n)
	}
	if _, err := f.fleet.Disconnect(ctx, "a\nstatus 3"); wirefleet.KindOf(err) != wirefleet.KindInvalid {
		t.Errorf("disconnect with a newline: %v, want invalid", err)
	}
}

func TestFleetNoProcesses(t *testing.T) {
	missing := NewFleet(FleetConfig{Dir: filepath.Join(t.TempDir(), "absent")})
	cs, err := missing.Connections(context.Background())
	if err != nil || len(cs) != 0 {
		t.Errorf("missing dir: %v, %v; want nothing and no error", cs, err)
	}
	if n, err := missing.Disconnect(context.Background(), cnA); err != nil || n != 0 {
		t.Errorf("disconnect without processes: %d, %v", n, err)
	}
	empty := NewFleet(FleetConfig{Dir: t.TempDir()})
	if cs, err := empty.Connections(context.Background()); err != nil || len(cs) != 0 {
		t.Errorf("empty dir: %v, %v", cs, err)
	}
}

// TestFleetProcessesComeAndGo: the socket directory is read at every call.
func TestFleetProcessesComeAndGo(t *testing.T) {
	dir := t.TempDir()
	fl := NewFleet(FleetConfig{Dir: dir, Timeout: time.Second})
	ctx := context.Background()
	if n, _ := fl.ClientCount(ctx); n != 0 {
		t.Fatalf("count %d before any process", n)
	}
	s := newFakeServer(t, dir, "late", 0)
	s.setClients(manyClients("late", 3)...)
	if n, err := fl.ClientCount(ctx); n != 3 || err != nil {
		t.Errorf("count %d, %v after a process appeared; want 3", n, err)
	}
	s.ln.Close() // Go removes the socket file: the process is gone
	if n, err := fl.ClientCount(ctx); n != 0 || err != nil {
		t.Errorf("count %d, %v after it left; want 0, nil", n, err)
	}
}

func TestFleetUnreadableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// Permission bits do not bind root (CI runs as root): run this test again as nobody.
		rerunAsNobody(t, "TestFleetUnreadableDir")
		return
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o100); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	fl := NewFleet(FleetConfig{Dir: dir})
	if _, err := fl.Connections(context.Background()); err == nil {
		t.Error("unreadable socket dir: no error")
	}
}

// rerunAsNobody runs one test of this package's test binary again as uid/gid 65534, from a
// copy of the binary in a directory nobody can reach, and fails unless it passed there.
func rerunAsNobody(t *testing.T, test string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "openvpn.test")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("%s as nobody: %v\n%s", test, err, out)
	}
}
