package vpndaemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

func TestNodeGolden(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, http.MethodGet, "/i/node", "")
	checkJSON(t, r)
	golden(t, "node.json", r.body)
}

func TestNodeProcFiles(t *testing.T) {
	tests := []struct {
		name       string
		loadavg    *string // nil: file missing
		uptime     *string
		created    time.Duration // device age at epoch
		infoErr    bool
		wantLoad   []float64
		wantRel    []int
		wantUptime int64
	}{
		{"normal", ptr("0.48 0.50 0.63 1/234 5678\n"), ptr("100000.97 1.0\n"), time.Hour, false, []float64{0.48, 0.5, 0.63}, []int{24, 25, 31}, 3600},
		{"missing loadavg", nil, ptr("100000.97 1.0\n"), time.Hour, false, []float64{}, []int{}, 3600},
		{"garbage loadavg", ptr("x y z\n"), ptr("100000.97 1.0\n"), time.Hour, false, []float64{}, []int{}, 3600},
		{"short loadavg", ptr("0.1 0.2\n"), ptr("100000.97 1.0\n"), time.Hour, false, []float64{}, []int{}, 3600},
		{"float artefact", ptr("0.29 0.58 1.15 1/1 1\n"), ptr("5.5 1\n"), time.Hour, false, []float64{0.29, 0.58, 1.15}, []int{14, 29, 57}, 5},
		{"host younger than device", ptr("0 0 0 1/1 1\n"), ptr("59.99 1\n"), 2 * time.Hour, false, []float64{0, 0, 0}, []int{0, 0, 0}, 59},
		{"device younger than host", ptr("0 0 0 1/1 1\n"), ptr("1000000.5 1\n"), 90*time.Second + 900*time.Millisecond, false, []float64{0, 0, 0}, []int{0, 0, 0}, 90},
		{"device created in the future", ptr("0 0 0 1/1 1\n"), ptr("1000 1\n"), -time.Minute, false, []float64{0, 0, 0}, []int{0, 0, 0}, 0},
		{"missing uptime", ptr("0 0 0 1/1 1\n"), nil, 42 * time.Second, false, []float64{0, 0, 0}, []int{0, 0, 0}, 42},
		// Without the device's age, the handler's (built at epoch, read 90 s later) stands in.
		{"device info fails", ptr("0 0 0 1/1 1\n"), ptr("1000 1\n"), 0, true, []float64{0, 0, 0}, []int{0, 0, 0}, 90},
		{"device info fails, no uptime", ptr("0 0 0 1/1 1\n"), nil, 0, true, []float64{0, 0, 0}, []int{0, 0, 0}, 90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for name, content := range map[string]*string{"loadavg": tc.loadavg, "uptime": tc.uptime} {
				path := filepath.Join(f.proc, name)
				if content == nil {
					if err := os.Remove(path); err != nil {
						t.Fatal(err)
					}
					continue
				}
				writeFile(t, path, *content)
			}
			f.dev.created = epoch.Add(-tc.created)
			if tc.infoErr {
				f.dev.infoErr = errors.New("device gone")
			}
			if tc.infoErr {
				f.clock.Set(epoch.Add(90 * time.Second))
			}
			r := f.do(t, http.MethodGet, "/i/node", "")
			checkJSON(t, r)
			got := decode[nodeJSON](t, r.body)
			want := nodeJSON{CPUCount: 2, LoadAverage: tc.wantLoad, RelLoadAverage: tc.wantRel, NodeUptime: tc.wantUptime, V: "1.2.3-test"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("/i/node (-want +got):\n%s\nbody: %s", diff, r.body)
			}
		})
	}
}

func TestNodeMaintenanceMode(t *testing.T) {
	f := newFixture(t)
	if got := decode[nodeJSON](t, f.do(t, http.MethodGet, "/i/node", "").body); got.MaintenanceMode {
		t.Fatal("maintenance_mode true without the file")
	}
	writeFile(t, f.maint, "")
	if got := decode[nodeJSON](t, f.do(t, http.MethodGet, "/i/node", "").body); !got.MaintenanceMode {
		t.Fatal("maintenance_mode false with the file present")
	}
}

func TestNodeCounts(t *testing.T) {
	ovpn := &fakeOpenVPN{conns: []OpenVPNConnection{
		{"YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=", "198.51.100.3", "2001:db8::3"},
		{"only-v4", "198.51.100.4", ""},
		{"UNDEF", "198.51.100.5", "2001:db8::5"},
	}}
	f := newFixture(t, func(c *Config) { c.OpenVPN = ovpn })
	for k, hs := range map[string]time.Duration{keyA: time.Minute, keyB: 4 * time.Minute} {
		f.do(t, http.MethodPost, "/w/add_peer", portalForm(k, "198.51.100.9/32"))
		f.dev.SetStats(wirefleet.MustParseKey(k), epoch.Add(-hs), 1, 2)
	}
	f.do(t, http.MethodPost, "/w/add_peer", portalForm("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "198.51.100.8/32"))

	for _, q := range []string{"", "?include_client_peer_count=no"} {
		r := f.do(t, http.MethodGet, "/i/node"+q, "")
		if got := decode[map[string]any](t, r.body); got["w_peer_count"] != nil || got["o_client_count"] != nil {
			t.Errorf("/i/node%s has counts: %s", q, r.body)
		}
	}
	if n := ovpn.calls.Load(); n != 0 {
		t.Errorf("/i/node without counts touched OpenVPN %d times", n)
	}
	r := f.do(t, http.MethodGet, "/i/node?include_client_peer_count=yes", "")
	checkJSON(t, r)
	got := decode[nodeJSON](t, r.body)
	if diff := cmp.Diff([2]*int{ptr(1), ptr(2)}, [2]*int{got.WPeerCount, got.OClientCount}); diff != "" {
		t.Errorf("w_peer_count, o_client_count (-want +got):\n%s", diff)
	}
	// Counts with no OpenVPN at all: present and zero.
	f = newFixture(t)
	r = f.do(t, http.MethodGet, "/i/node?include_client_peer_count=yes", "")
	if got := decode[map[string]any](t, r.body); got["w_peer_count"] != 0.0 || got["o_client_count"] != 0.0 {
		t.Errorf("counts on an empty node: %s, want both 0", r.body)
	}
}

// slowDevice answers reads after a delay, or never (until ctx ends) when hang is set.
type slowDevice struct {
	*device
	delay time.Duration
	hang  bool
}

func (s slowDevice) wait(ctx context.Context) error {
	if s.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	time.Sleep(s.delay)
	return nil
}

func (s slowDevice) Peers(ctx context.Context) ([]wgdev.PeerStatus, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.device.Peers(ctx)
}

func (s slowDevice) Info(ctx context.Context) (wgdev.Info, error) {
	if err := s.wait(ctx); err != nil {
		return wgdev.Info{}, err
	}
	return s.device.Info(ctx)
}

// TestNodeTimeBudget: with counts, the device and OpenVPN are asked at the same time (the
// answer takes the slower of the two, not their sum), and a hung device cannot hold
// /i/node past the request's device budget.
func TestNodeTimeBudget(t *testing.T) {
	const d = 800 * time.Millisecond
	f := newFixture(t, func(c *Config) {
		c.OpenVPN = &fakeOpenVPN{delay: d, conns: []OpenVPNConnection{{"a", "198.51.100.3", "2001:db8::3"}}}
	})
	f.h.dev = slowDevice{device: f.dev, delay: d}
	f.h.infoOK, f.h.info = true, wgdev.Info{Created: epoch.Add(-time.Hour)} // Info read before
	start := time.Now()
	r := f.do(t, http.MethodGet, "/i/node?include_client_peer_count=yes", "")
	if took := time.Since(start); took > 2*d-300*time.Millisecond {
		t.Errorf("took %v with device and OpenVPN each taking %v: not concurrent", took, d)
	}
	if got := decode[nodeJSON](t, r.body); got.OClientCount == nil || *got.OClientCount != 1 {
		t.Errorf("/i/node: %s, want o_client_count 1", r.body)
	}

	const budget = 300 * time.Millisecond
	f = newFixture(t, func(c *Config) { c.DeviceTimeout = budget })
	f.h.dev = slowDevice{device: f.dev, hang: true}
	start = time.Now()
	r = f.do(t, http.MethodGet, "/i/node", "")
	if took := time.Since(start); took > budget+time.Second {
		t.Errorf("/i/node took %v on a hung device, want about the %v budget", took, budget)
	}
	if r.status != 200 {
		t.Errorf("/i/node on a hung device: %d, want 200 (liveness does not need the device)", r.status)
	}
}
