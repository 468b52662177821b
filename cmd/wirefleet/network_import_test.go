package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what the user's terminal looks like to the CLI.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestIsTerminal(t *testing.T) {
	_, pty := openPTY(t)
	regular, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	tests := []struct {
		name string
		w    io.Writer
		want bool
	}{
		{"terminal", pty, true},
		{"buffer", &bytes.Buffer{}, false},
		{"regular file", regular, false},
		{"/dev/null (a character device, not a terminal)", devNull, false},
		{"pipe", pw, false},
	}
	for _, tt := range tests {
		if got := isTerminal(tt.w); got != tt.want {
			t.Errorf("%s: isTerminal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// writes records each Write separately, so that the golden file shows each redraw.
type writes []string

func (w *writes) Write(p []byte) (int, error) { *w = append(*w, string(p)); return len(p), nil }

// TestProgressRendering: what the bar draws on a terminal (golden file, one redraw a line,
// quoted) for a successful and a failed import, with the redraw throttle on a fake clock;
// and that it draws nothing when not on a terminal.
func TestProgressRendering(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		at          time.Duration
		sent, total int64
	}
	scenario := func(tty bool, steps []step, ok bool) []string {
		var w writes
		p := newProgress(&w, "importing 20000 peers into wg0", tty)
		var now time.Time
		p.now = func() time.Time { return now }
		for _, s := range steps {
			now = start.Add(s.at)
			p.update(s.sent, s.total)
		}
		p.done(ok)
		return w
	}
	upload := []step{
		{0, 0, 1000},
		{50 * time.Millisecond, 100, 1000}, // within 100 ms of the last redraw: skipped
		{150 * time.Millisecond, 250, 1000},
		{200 * time.Millisecond, 400, 1000}, // skipped
		{300 * time.Millisecond, 999, 1000},
		{310 * time.Millisecond, 1000, 1000}, // the end is always drawn
		{320 * time.Millisecond, 0, 0},       // unknown total: nothing
	}
	var out strings.Builder
	for _, sc := range []struct {
		name string
		tty  bool
		ok   bool
	}{{"terminal, success", true, true}, {"terminal, failure", true, false}, {"not a terminal, success", false, true}, {"not a terminal, failure", false, false}} {
		steps := upload
		if !sc.ok {
			steps = upload[:3]
		}
		fmt.Fprintf(&out, "== %s\n", sc.name)
		for _, w := range scenario(sc.tty, steps, sc.ok) {
			fmt.Fprintf(&out, "%q\n", w)
		}
	}
	golden(t, "testdata/import_progress.golden", out.String())
}

// TestNetworkImportProgressOnlyOnTerminal runs `wirefleet network import` against the
// real API twice: with stderr a buffer (a pipe or log) it prints no bar and no control
// characters; with stderr a pseudo-terminal the bar is drawn and ends with "done".
func TestNetworkImportProgressOnlyOnTerminal(t *testing.T) {
	a := newTestAPI(t)
	_, admin, err := a.svc.CreateToken(context.Background(), control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	conf.WriteString("[Interface]\nAddress = 198.18.0.1/16\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n")
	const peers = 500
	for i := range peers {
		k, err := wirefleet.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "[Peer]\nPublicKey = %s\nAllowedIPs = 198.18.%d.%d/32\n", k.PublicKey(), 1+i/250, 1+i%250)
	}
	dir := t.TempDir()
	for _, name := range []string{"piped", "onatty"} {
		if err := os.WriteFile(filepath.Join(dir, name+".conf"), []byte(conf.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(file string, stderr io.Writer) string {
		t.Helper()
		var stdout bytes.Buffer
		args := []string{"-server", a.hs.URL, "-token", admin, filepath.Join(dir, file)}
		if err := runNetworkImport(context.Background(), args, &stdout, stderr); err != nil {
			t.Fatalf("network import %s: %v", file, err)
		}
		return stdout.String()
	}

	var piped bytes.Buffer
	if out := run("piped.conf", &piped); !strings.Contains(out, fmt.Sprintf("imported network piped with %d peers", peers)) {
		t.Errorf("stdout %q", out)
	}
	if piped.Len() != 0 {
		t.Errorf("stderr not on a terminal got %q, want nothing", piped.String())
	}

	master, slave := openPTY(t)
	drawn := make(chan string)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the slave is closed
		drawn <- string(b)
	}()
	if out := run("onatty.conf", slave); !strings.Contains(out, fmt.Sprintf("imported network onatty with %d peers", peers)) {
		t.Errorf("stdout %q", out)
	}
	slave.Close()
	var tty string
	select {
	case tty = <-drawn:
	case <-time.After(10 * time.Second):
		t.Fatal("reading the terminal did not end")
	}
	label := fmt.Sprintf("\rimporting %d peers into onatty [", peers)
	if !strings.Contains(tty, label) || !strings.Contains(tty, "] 100% done\x1b[K") {
		t.Errorf("the terminal shows %q, want the bar ending with 100%% done", tty)
	}
}
