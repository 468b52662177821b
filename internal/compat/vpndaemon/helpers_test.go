package vpndaemon

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Keys as the portal sends them: base64 with "+", "/" and "=".
const (
	keyA = "kNLsIjAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s="
	keyB = "YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E="
)

// epoch is the fixed "now" of the tests.
var epoch = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// device is the in-memory device with a controllable Info (Created, own key).
type device struct {
	*wgdevtest.Memory
	created time.Time
	own     wirefleet.Key
	infoErr error
}

func (d *device) Info(ctx context.Context) (wgdev.Info, error) {
	if d.infoErr != nil {
		return wgdev.Info{}, d.infoErr
	}
	i, err := d.Memory.Info(ctx)
	i.Created, i.PublicKey = d.created, d.own
	return i, err
}

type fixture struct {
	h     *Handler
	dev   *device
	clock *testenv.Clock
	proc  string
	maint string
}

// newFixture builds a handler over an in-memory device, a fake /proc (uptime 100000 s,
// load 0.48 0.50 0.63), 2 CPUs and a device created one hour before now.
func newFixture(t *testing.T, mod ...func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	writeFile(t, filepath.Join(proc, "loadavg"), "0.48 0.50 0.63 1/234 5678\n")
	writeFile(t, filepath.Join(proc, "uptime"), "100000.97 190000.10\n")
	f := &fixture{
		dev:   &device{Memory: wgdevtest.NewMemory("wg0"), created: epoch.Add(-time.Hour), own: wirefleet.MustParseKey("ZOwnZOwnZOwnZOwnZOwnZOwnZOwnZOwnZOwnZOwnZOw=")},
		clock: testenv.NewClock(epoch),
		proc:  proc,
		maint: filepath.Join(dir, "maintenance-mode"),
	}
	cfg := Config{
		Device: f.dev, ProcRoot: proc, CPUCount: 2, Version: "1.2.3-test",
		Now: f.clock.Now, MaintenanceFile: f.maint,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil)),
	}
	for _, m := range mod {
		m(&cfg)
	}
	f.h = New(cfg)
	return f
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request as the portal does: a form body with its Content-Type on POST.
func (f *fixture) do(t *testing.T, method, target, form string) response {
	t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req = httptest.NewRequest(method, target, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

func (f *fixture) peers(t *testing.T) []wgdev.PeerStatus {
	t.Helper()
	p, err := f.dev.Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), []byte(got), *update)
}

// newPost builds a POST with a body; contentType "" means the form type.
func newPost(t *testing.T, target, body, contentType string) *http.Request {
	t.Helper()
	if contentType == "" {
		contentType = "application/x-www-form-urlencoded"
	}
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	return req
}

func (f *fixture) serve(req *http.Request) response {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

// cmpOpts compares the netip types (unexported fields) by value.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
}

// tWriter sends the handler's log to the test log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
