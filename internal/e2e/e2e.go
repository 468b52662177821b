// Package e2e holds what the multi-host end-to-end tests share: building the wirefleet
// binary once per test process, and starting it inside a network namespace. The tests
// themselves live in sub-packages, one per capability, so that each builds on its own.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds ./cmd/wirefleet once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wirefleet-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "wirefleet")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/wirefleet")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Process is a wirefleet (or any) process started for a test. Its combined output is
// kept and printed when the test fails.
type Process struct {
	Cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
	err  error
}

// Start starts name with args inside ns (nil: the test's own namespace) and stops it with
// SIGTERM (then SIGKILL after 5 s) in t.Cleanup.
func Start(t testing.TB, ns *testenv.NetNS, env []string, name string, args ...string) *Process {
	t.Helper()
	var cmd *exec.Cmd
	if ns != nil {
		cmd = ns.Command(name, args...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Env = append(os.Environ(), env...)
	p := &Process{Cmd: cmd, out: &testenv.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", name, strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Stop sends SIGTERM and waits up to grace before SIGKILL. It returns the exit error.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// Kill sends SIGKILL (a crash) and waits for the process to end.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Output returns everything the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// WaitOutput waits until the output contains s or ctx ends.
func (p *Process) WaitOutput(ctx context.Context, s string) error {
	for {
		if strings.Contains(p.Output(), s) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q in output: %w", s, ctx.Err())
		case <-p.done:
			if strings.Contains(p.Output(), s) {
				return nil
			}
			return fmt.Errorf("process exited (%v) before printing %q", p.err, s)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Eventually polls f every 100 ms until it returns nil or timeout passes; it fails the
// test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	EventuallyEvery(t, timeout, 100*time.Millisecond, f)
}

// EventuallyEvery is Eventually polling every interval (benchmarks that time convergence
// poll finer, so that the polling period does not dominate what they measure).
func EventuallyEvery(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// Lines splits s into non-empty trimmed lines (handy for CLI output).
func Lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(io.Reader(strings.NewReader(s)))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
