package openvpn

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
)

// replay serves a recorded transcript on a unix socket: it checks that the client sends
// each "C " line and answers with the "S " lines that follow it.
func replay(t *testing.T, transcript string) string {
	t.Helper()
	raw, err := os.ReadFile(transcript)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		cmd string
		out []string
	}
	steps := []step{{}}
	for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "C "):
			steps = append(steps, step{cmd: l[2:]})
		case strings.HasPrefix(l, "S "):
			steps[len(steps)-1].out = append(steps[len(steps)-1].out, l[2:])
		}
	}
	sock := filepath.Join(t.TempDir(), "replay.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for i, s := range steps {
			if i > 0 {
				got, err := r.ReadString('\n')
				if err != nil {
					t.Errorf("step %d: reading command: %v", i, err)
					return
				}
				if got = strings.TrimRight(got, "\r\n"); got != s.cmd {
					t.Errorf("step %d: client sent %q, transcript has %q", i, got, s.cmd)
					return
				}
			}
			for _, o := range s.out {
				if _, err := c.Write([]byte(o + "\r\n")); err != nil {
					return
				}
			}
		}
	}()
	return sock
}

// TestTranscriptOpenVPN2614 drives the client through a session recorded from a real
// OpenVPN 2.6.14, with real-time log and byte-count notifications interleaved, and
// compares everything it understood with a golden file.
func TestTranscriptOpenVPN2614(t *testing.T) {
	sock := replay(t, "testdata/session-2.6.14.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var notes []Notification
	d := Dialer{OnNotification: func(n Notification) { mu.Lock(); notes = append(notes, n); mu.Unlock() }}
	c, err := d.Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type result struct {
		Banner        string
		LogOn         string
		Bytecount     string
		Status        *Status
		Version       Version
		Killed        int
		StatusAfter   *Status
		Notifications []Notification
	}
	var res result
	res.Banner = c.Banner()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	res.LogOn, err = c.Exec(ctx, "log on")
	must(err)
	res.Bytecount, err = c.Exec(ctx, "bytecount 1")
	must(err)
	res.Status, err = c.Status(ctx)
	must(err)
	res.Version, err = c.Version(ctx)
	must(err)
	res.Killed, err = c.Kill(ctx, "kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=")
	must(err)
	res.StatusAfter, err = c.Status(ctx)
	must(err)
	mu.Lock()
	res.Notifications = notes
	mu.Unlock()
	out, err := json.MarshalIndent(res, "", "  ")
	must(err)
	golden(t, "session-2.6.14.golden.json", append(out, '\n'))
	if res.Killed != 1 || len(res.Status.Clients) != 1 || len(res.StatusAfter.Clients) != 0 {
		t.Errorf("killed %d, clients before %d, after %d", res.Killed, len(res.Status.Clients), len(res.StatusAfter.Clients))
	}
}

// listen returns a unix socket path whose listener runs serve for each connection.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "m.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	return sock
}

// script answers each command line with the given raw output.
func script(answers map[string]string) func(net.Conn) {
	return func(c net.Conn) {
		c.Write([]byte(">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n"))
		r := bufio.NewScanner(c)
		for r.Scan() {
			a, ok := answers[r.Text()]
			if !ok {
				a = "ERROR: unknown command, enter 'help' for more options\r\n"
			}
			c.Write([]byte(a))
		}
	}
}

func TestConnErrorsAndNotifications(t *testing.T) {
	sock := listen(t, script(map[string]string{
		"status 3":      ">LOG:1,D,x\r\nERROR: status failed\r\n",
		"pid":           ">HOLD:Waiting for hold release:0\r\nSUCCESS: pid=42\r\n",
		"version":       ">CLIENT:CONNECT,0,1\r\n>CLIENT:ENV,common_name=a\r\n>CLIENT:ENV,END\r\nOpenVPN Version: OpenVPN 2.6.14\r\n>BYTECOUNT_CLI:0,1,2\r\nManagement Version: 5\r\nEND\r\n",
		`kill "nobody"`: "ERROR: common name 'nobody' not found\r\n",
		`kill "two"`:    "SUCCESS: common name 'two' found, 2 client(s) killed\r\n",
		"weird":         "TITLE\tnot an answer to a single-line command\r\n",
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var notes []string
	d := Dialer{OnNotification: func(n Notification) { notes = append(notes, n.Type) }}
	c, err := d.Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var ce *CommandError
	if _, err := c.Status(ctx); !errors.As(err, &ce) || ce.Message != "status failed" {
		t.Errorf("status: %v, want CommandError 'status failed'", err)
	}
	if msg, err := c.Exec(ctx, "pid"); err != nil || msg != "pid=42" {
		t.Errorf("pid = %q, %v", msg, err)
	}
	if v, err := c.Version(ctx); err != nil || v.OpenVPN != "OpenVPN 2.6.14" || v.Management != 5 {
		t.Errorf("version = %+v, %v", v, err)
	}
	if n, err := c.Kill(ctx, "nobody"); err != nil || n != 0 {
		t.Errorf("kill nobody = %d, %v; want 0, nil", n, err)
	}
	if n, err := c.Kill(ctx, "two"); err != nil || n != 2 {
		t.Errorf("kill two = %d, %v; want 2, nil", n, err)
	}
	if _, err := c.Kill(ctx, "a b"); wirefleet.KindOf(err) != wirefleet.KindInvalid {
		t.Errorf("kill 'a b' = %v, want an invalid error", err)
	}
	if _, err := c.Exec(ctx, "status 3\nkill x"); wirefleet.KindOf(err) != wirefleet.KindInvalid {
		t.Errorf("two commands in one = %v, want an invalid error", err)
	}
	if _, err := c.Exec(ctx, "weird"); err == nil {
		t.Error("a data line answering a single-line command was accepted")
	}
	want := "INFO LOG HOLD CLIENT CLIENT CLIENT BYTECOUNT_CLI"
	if got := strings.Join(notes, " "); got != want {
		t.Errorf("notifications %q, want %q", got, want)
	}
	// After the protocol error the stream is out of step: the Conn refuses to go on.
	if _, err := c.Exec(ctx, "pid"); err == nil {
		t.Error("conn still used after a protocol error")
	}
}

// TestConnDeadlines: a process that accepts but never answers, or stops mid-answer,
// costs the caller its deadline and no more.
func TestConnDeadlines(t *testing.T) {
	release := make(chan struct{})
	silent := listen(t, func(c net.Conn) { <-release })
	midway := listen(t, func(c net.Conn) {
		c.Write([]byte(">INFO:OpenVPN Management Interface Version 5\r\n"))
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("TITLE\tOpenVPN 2.6.14\r\nHEADER\tCLIENT_LIST\tCommon Name\r\n"))
		<-release
	})
	password := listen(t, func(c net.Conn) { c.Write([]byte("ENTER PASSWORD:")); <-release })
	notOpenVPN := listen(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")); <-release })
	// Registered after the listeners, so it runs before their cleanups wait for handlers.
	t.Cleanup(func() { close(release) })

	const budget = 200 * time.Millisecond
	t.Run("silent", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		start := time.Now()
		_, err := Dial(ctx, "unix", silent)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want deadline exceeded", err)
		}
		if took := time.Since(start); took > budget+300*time.Millisecond {
			t.Errorf("took %v with a %v deadline", took, budget)
		}
	})
	t.Run("midway", func(t *testing.T) {
		c, err := Dial(context.Background(), "unix", midway)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		start := time.Now()
		if _, err := c.Status(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want deadline exceeded", err)
		}
		if took := time.Since(start); took > budget+300*time.Millisecond {
			t.Errorf("took %v with a %v deadline", took, budget)
		}
	})
	t.Run("cancel without deadline", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(budget, cancel)
		if _, err := Dial(ctx, "unix", silent); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want canceled", err)
		}
	})
	t.Run("password", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := Dial(ctx, "unix", password); !errors.Is(err, ErrPasswordRequired) {
			t.Errorf("err = %v, want ErrPasswordRequired", err)
		}
	})
	t.Run("not openvpn", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := Dial(ctx, "unix", notOpenVPN); err == nil || !strings.Contains(err.Error(), "OpenVPN management socket") {
			t.Errorf("err = %v, want a greeting error", err)
		}
	})
	t.Run("stale socket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := Dial(ctx, "unix", filepath.Join(t.TempDir(), "gone.sock")); err == nil {
			t.Error("dial to a missing socket succeeded")
		}
	})
}

func TestConnLineLimit(t *testing.T) {
	sock := listen(t, func(c net.Conn) {
		c.Write([]byte(">INFO:x\r\n"))
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte(strings.Repeat("A", maxLineBytes+10) + "\r\n"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("err = %v, want a line-length error", err)
	}
}

func TestConnTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		script(map[string]string{"pid": "SUCCESS: pid=7\r\n"})(c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if msg, err := c.Exec(ctx, "pid"); err != nil || msg != "pid=7" {
		t.Errorf("pid over TCP = %q, %v", msg, err)
	}
}

// FuzzConnAnswers feeds arbitrary bytes from the "server" to a session running every
// command the bridge uses: no panic, and no hang until the deadline (the session ends
// when the input does).
func FuzzConnAnswers(f *testing.F) {
	raw, err := os.ReadFile("testdata/session-2.6.14.txt")
	if err != nil {
		f.Fatal(err)
	}
	var server []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "S ") {
			server = append(server, l[2:])
		}
	}
	f.Add(strings.Join(server, "\r\n") + "\r\n")
	f.Add(">INFO:x\r\nERROR: a\r\nSUCCESS: common name 'x' found, many client(s) killed\r\nEND\r\n")
	f.Add("ENTER PASSWORD:")
	f.Add(">INFO:x\r\n>CLIENT:ENV,END\r\nTITLE\tx\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		cli, srv := net.Pipe()
		defer cli.Close()
		go func() {
			srv.Write([]byte(in))
			srv.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var d Dialer
		c, err := d.newConn(ctx, cli)
		if err != nil {
			return
		}
		// net.Pipe is synchronous: drain the commands so the server side never blocks.
		go func() { _, _ = io.Copy(io.Discard, srv) }()
		_, _ = c.Status(ctx)
		_, _ = c.Version(ctx)
		_, _ = c.Kill(ctx, "a+/=")
		if ctx.Err() != nil {
			t.Fatalf("session took the whole deadline on %q", in)
		}
	})
}
