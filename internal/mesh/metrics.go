package mesh

import (
	"crypto/ed25519"
	"encoding/base64"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the node's Prometheus metrics, on a registry of their own (never the global
// one, so several nodes can live in one test process).
type Metrics struct {
	Registry     *prometheus.Registry
	nodes        *prometheus.GaugeVec
	adminBytes   *prometheus.CounterVec
	routeChanges prometheus.Counter
	refused      prometheus.Counter
	dropped      *prometheus.CounterVec
}

// NewMetrics builds the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wirefleet_mesh_nodes",
			Help: "Reachable mesh nodes by path type (direct, lan, nat, relay)."}, []string{"path"}),
		adminBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wirefleet_mesh_admin_bytes_total",
			Help: "Bytes of admin-channel datagrams, by direction (sent, received)."}, []string{"direction"}),
		routeChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "wirefleet_mesh_route_changes_total",
			Help: "Destinations added, withdrawn or moved to another gateway."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "wirefleet_mesh_refused_claims_total",
			Help: "Node records refused: wg IP outside the subnet or bound to another identity."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wirefleet_mesh_dropped_datagrams_total",
			Help: "Admin datagrams dropped, by reason (auth, window, replay, malformed, signature)."}, []string{"reason"}),
	}
	m.Registry.MustRegister(m.nodes, m.adminBytes, m.routeChanges, m.refused, m.dropped)
	for _, p := range []string{PathDirect, PathLAN, PathNAT, PathRelay} {
		m.nodes.WithLabelValues(p)
	}
	return m
}

func idString(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }
