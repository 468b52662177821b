package vpndaemon

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// nodeJSON is /i/node. The counts are pointers: present (even when 0) only when asked for
// with include_client_peer_count=yes.
type nodeJSON struct {
	CPUCount        int       `json:"cpu_count"`
	LoadAverage     []float64 `json:"load_average"`
	MaintenanceMode bool      `json:"maintenance_mode"`
	NodeUptime      int64     `json:"node_uptime"`
	RelLoadAverage  []int     `json:"rel_load_average"`
	V               string    `json:"v"`
	WPeerCount      *int      `json:"w_peer_count,omitempty"`
	OClientCount    *int      `json:"o_client_count,omitempty"`
}

func (h *Handler) node(w http.ResponseWriter, r *http.Request) {
	counts, err := parseYesNo(r.URL.Query(), "include_client_peer_count")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// One deadline for all device work of the request, so that the answer stays within
	// the portal's budget even on a device that does not answer.
	ctx, cancel := context.WithTimeout(r.Context(), h.deviceTimeout)
	defer cancel()
	out := nodeJSON{
		CPUCount:        h.cpuCount,
		LoadAverage:     []float64{},
		RelLoadAverage:  []int{},
		MaintenanceMode: h.maintenanceMode(),
		NodeUptime:      h.nodeUptime(ctx),
		V:               h.version,
	}
	if load, err := readLoadAvg(filepath.Join(h.procRoot, "loadavg")); err == nil {
		out.LoadAverage = load[:]
		out.RelLoadAverage = relLoad(load, h.cpuCount)
	}
	if counts {
		// Without counts, /i/node (the portal's liveness probe) touches neither the peer
		// list nor any OpenVPN socket, so it stays fast whatever the node's load. With
		// them, OpenVPN is asked while the device is read: the slower of the two budgets
		// bounds the answer, not their sum.
		ovpn := make(chan int, 1)
		go func() {
			n := 0
			for _, c := range h.connections(r.Context()) {
				if c.CommonName != "" && c.CommonName != "UNDEF" {
					n++
				}
			}
			ovpn <- n
		}()
		peers, err := h.dev.Peers(ctx)
		if err != nil {
			h.fail(w, r, fmt.Errorf("count peers: %w", err))
			return
		}
		now := h.now()
		wc := 0
		for _, p := range peers {
			if online(p, now) {
				wc++
			}
		}
		oc := <-ovpn
		out.WPeerCount, out.OClientCount = &wc, &oc
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) maintenanceMode() bool {
	if h.maintenance == "" {
		return false
	}
	_, err := os.Stat(h.maintenance)
	return err == nil
}

// nodeUptime is the smaller of the host's uptime and the age of the device's peer state.
// The portal prunes idle peers on nodes "up" for more than 72 h; after a gateway restart
// the handshake history is new, and reporting the host's uptime would make the next sync
// drop every idle peer. When the device's age cannot be read, the handler's own age stands
// in for it: the device was opened before the handler was built, so that errs on the
// small side, the side that prunes nothing.
func (h *Handler) nodeUptime(ctx context.Context) int64 {
	now := h.now()
	created := h.started
	if info, ok := h.deviceInfo(ctx); ok && !info.Created.IsZero() {
		created = info.Created
	}
	age := max(int64(now.Sub(created)/time.Second), 0)
	if up, err := readUptime(filepath.Join(h.procRoot, "uptime")); err == nil {
		return min(up, age)
	}
	return age
}

// deviceInfo returns the device's Info, read once and then cached: Created and the public
// key do not change while the gateway holds the device, and /i/node is called before every
// portal connect, so it must not cost a device round trip.
func (h *Handler) deviceInfo(ctx context.Context) (wgdev.Info, bool) {
	h.infoMu.Lock()
	info, ok := h.info, h.infoOK
	h.infoMu.Unlock()
	if ok {
		return info, true
	}
	// Not under the lock: a device that hangs must not make later requests wait past
	// their own deadlines. Concurrent first calls may each read; that is harmless.
	info, err := h.dev.Info(ctx)
	if err != nil {
		h.log.Warn("reading device info failed", "err", err)
		return wgdev.Info{}, false
	}
	h.infoMu.Lock()
	h.info, h.infoOK = info, true
	h.infoMu.Unlock()
	return info, true
}

// ownKey is the device's public key, when known.
func (h *Handler) ownKey(ctx context.Context) (wirefleet.Key, bool) {
	info, ok := h.deviceInfo(ctx)
	if !ok || info.PublicKey.IsZero() {
		return wirefleet.Key{}, false
	}
	return info.PublicKey, true
}

// readLoadAvg reads the three load averages of proc(5)'s loadavg.
func readLoadAvg(path string) ([3]float64, error) {
	var out [3]float64
	b, err := os.ReadFile(path)
	if err != nil {
		return out, err
	}
	return parseLoadAvg(string(b))
}

func parseLoadAvg(s string) ([3]float64, error) {
	var out [3]float64
	f := strings.Fields(s)
	if len(f) < 3 {
		return out, fmt.Errorf("loadavg %s: want at least 3 fields", quote(s))
	}
	for i := range 3 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return out, fmt.Errorf("loadavg field %d %s: not a non-negative number", i+1, quote(f[i]))
		}
		out[i] = v
	}
	return out, nil
}

// relLoad is 100·load/cpus truncated to an integer. The small epsilon keeps a load that
// is exactly representable in hundredths (as the kernel prints it) from truncating one
// below because of binary floating point (0.29·100 = 28.999…).
func relLoad(load [3]float64, cpus int) []int {
	out := make([]int, 3)
	for i, l := range load {
		v := math.Floor(100*l/float64(cpus) + 1e-9)
		if v > math.MaxInt32 {
			v = math.MaxInt32
		}
		out[i] = int(v)
	}
	return out
}

// readUptime reads the host uptime in whole seconds (first field of /proc/uptime).
func readUptime(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseUptime(string(b))
}

func parseUptime(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("uptime %s: empty", quote(s))
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || v > math.MaxInt64/2 {
		return 0, fmt.Errorf("uptime %s: not a non-negative number", quote(f[0]))
	}
	return int64(v), nil
}
