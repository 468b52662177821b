// Package metrics names Wirefleet's Prometheus metrics and builds them on a registry the
// composition root creates (never the global one), plus the /metrics, /healthz and /readyz
// handlers both the server and the gateway serve.
//
// Per-peer metrics are collected at scrape time from the gateway's latest device read, so
// a gateway with 50k peers holds no per-peer metric objects between scrapes.
package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names (the contract with dashboards; docs/operations.md lists them).
const (
	PeerReceiveBytes   = "wirefleet_peer_receive_bytes_total"
	PeerTransmitBytes  = "wirefleet_peer_transmit_bytes_total"
	PeerLastHandshake  = "wirefleet_peer_last_handshake_seconds"
	AppliedSeq         = "wirefleet_replication_applied_seq"
	HeadSeq            = "wirefleet_replication_head_seq"
	ReplicationLag     = "wirefleet_replication_lag_ops"
	ReplicationUp      = "wirefleet_replication_connected"
	Snapshots          = "wirefleet_replication_snapshots_total"
	Reloads            = "wirefleet_replication_reloads_total"
	OpsApplied         = "wirefleet_replication_ops_applied_total"
	DriftRepairs       = "wirefleet_drift_repairs_total"
	ApplyDuration      = "wirefleet_apply_duration_seconds"
	Propagation        = "wirefleet_replication_propagation_seconds"
	DeviceErrors       = "wirefleet_device_errors_total"
	GatewayPeers       = "wirefleet_gateway_peers"
	APIRequestDuration = "wirefleet_api_request_duration_seconds"
	LogSeq             = "wirefleet_log_seq"
	ReplicationStreams = "wirefleet_replication_streams"
	GatewaysConnected  = "wirefleet_gateways_connected"
	Peers              = "wirefleet_peers"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Health returns the /healthz handler (the process is alive) and the /readyz handler
// (ready reports nil).
func Health(ready func(ctx context.Context) error) (healthz, readyz http.Handler) {
	healthz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok", "")
	})
	readyz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := ready(ctx); err != nil {
				writeStatus(w, http.StatusServiceUnavailable, "not ready", err.Error())
				return
			}
		}
		writeStatus(w, http.StatusOK, "ready", "")
	})
	return healthz, readyz
}

func writeStatus(w http.ResponseWriter, code int, status, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	m := map[string]string{"status": status}
	if detail != "" {
		m["detail"] = detail
	}
	_ = json.NewEncoder(w).Encode(m)
}

// Mount adds /metrics, /healthz and /readyz to mux.
func Mount(mux *http.ServeMux, reg *prometheus.Registry, ready func(ctx context.Context) error) {
	h, rd := Health(ready)
	mux.Handle("GET /metrics", Handler(reg))
	mux.Handle("GET /healthz", h)
	mux.Handle("GET /readyz", rd)
}

// statusRecorder captures the status code for the latency histogram.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines (streams).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// codeClass keeps the code label small: "2xx", "4xx"…
func codeClass(code int) string {
	if code == 0 {
		code = http.StatusOK
	}
	return strconv.Itoa(code/100) + "xx"
}
