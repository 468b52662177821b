package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirefleet/wirefleet"
)

func TestGatewayCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	var k wirefleet.Key
	k[0] = 1
	g := NewGateway(reg, GatewaySources{
		Peers: func() []PeerSample {
			return []PeerSample{{Network: "a", PublicKey: k, RxBytes: 10, TxBytes: 20, LastHandshake: time.Unix(1700000000, 0)}}
		},
		Replication: func() ReplicationSample {
			return ReplicationSample{Connected: true, Applied: 90, Head: 100, Snapshots: 1, Reloads: 0, Ops: 89}
		},
		Counts: func() map[string][2]int { return map[string][2]int{"a": {3, 2}} },
	})
	g.DriftRepairs.WithLabelValues("a", "missing").Inc()
	want := `
# HELP wirefleet_peer_receive_bytes_total Bytes received from the peer.
# TYPE wirefleet_peer_receive_bytes_total counter
wirefleet_peer_receive_bytes_total{network="a",public_key="AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="} 10
# HELP wirefleet_peer_last_handshake_seconds Unix time of the peer's latest handshake (0: never).
# TYPE wirefleet_peer_last_handshake_seconds gauge
wirefleet_peer_last_handshake_seconds{network="a",public_key="AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="} 1.7e+09
# HELP wirefleet_replication_lag_ops Ops known to the control plane and not yet applied.
# TYPE wirefleet_replication_lag_ops gauge
wirefleet_replication_lag_ops 10
# HELP wirefleet_drift_repairs_total Differences between the desired state and a device found and repaired by the drift check, by kind (missing, stray, altered, interface).
# TYPE wirefleet_drift_repairs_total counter
wirefleet_drift_repairs_total{kind="missing",network="a"} 1
# HELP wirefleet_gateway_peers Peers in the desired state, by network and state (desired, active).
# TYPE wirefleet_gateway_peers gauge
wirefleet_gateway_peers{network="a",state="active"} 2
wirefleet_gateway_peers{network="a",state="desired"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), PeerReceiveBytes, PeerLastHandshake, ReplicationLag, DriftRepairs, GatewayPeers); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 12 {
		t.Errorf("%d metrics, %v", n, err)
	}
}

func TestServerInstrumentUsesRoutePattern(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewServer(reg, ServerSources{LogSeq: func() uint64 { return 42 }, Gateways: func() int { return 2 },
		PeersByState: func() map[string]int { return map[string]int{"enabled": 5, "disabled": 1} }})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/networks/{network}", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /api/v1/replication/log", func(w http.ResponseWriter, r *http.Request) {})
	h := s.Instrument(mux)
	for _, p := range []string{"/api/v1/networks/a", "/api/v1/networks/b", "/api/v1/replication/log", "/nope"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	if n := testutil.CollectAndCount(s.APILatency); n != 2 {
		t.Errorf("%d latency series, want 2 (one route pattern, unmatched; the stream untimed)", n)
	}
	want := `
# HELP wirefleet_log_seq Head sequence of the operation log.
# TYPE wirefleet_log_seq gauge
wirefleet_log_seq 42
# HELP wirefleet_peers Peers by state.
# TYPE wirefleet_peers gauge
wirefleet_peers{state="disabled"} 1
wirefleet_peers{state="enabled"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), LogSeq, Peers); err != nil {
		t.Error(err)
	}
}

func TestHealthAndReady(t *testing.T) {
	mux := http.NewServeMux()
	ready := errors.New("control plane not reached yet")
	Mount(mux, NewRegistry(), func(ctx context.Context) error { return ready })
	for _, tt := range []struct {
		path string
		code int
	}{{"/healthz", 200}, {"/readyz", 503}, {"/metrics", 200}} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
		if w.Code != tt.code {
			t.Errorf("%s: %d, want %d", tt.path, w.Code, tt.code)
		}
	}
	ready = nil
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 200 {
		t.Errorf("ready: %d", w.Code)
	}
}
