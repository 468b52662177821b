package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Server holds the control plane's metrics.
type Server struct {
	APILatency *prometheus.HistogramVec // route, method, code
	Streams    *prometheus.GaugeVec     // role
}

// ServerSources are read at scrape time.
type ServerSources struct {
	// LogSeq returns the log's head sequence.
	LogSeq func() uint64
	// Gateways returns how many gateways pushed stats recently.
	Gateways func() int
	// PeersByState returns peer counts by state (enabled, disabled, expired).
	PeersByState func() map[string]int
}

// NewServer registers the server metrics on reg.
func NewServer(reg prometheus.Registerer, src ServerSources) *Server {
	s := &Server{
		APILatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: APIRequestDuration,
			Help:    "API request latency by route pattern, method and status class (long-lived replication streams are excluded).",
			Buckets: prometheus.DefBuckets}, []string{"route", "method", "code"}),
		Streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ReplicationStreams,
			Help: "Open replication log streams by the consumer's role (gateway, follower, admin)."}, []string{"role"}),
	}
	reg.MustRegister(s.APILatency, s.Streams, &serverCollector{src})
	return s
}

// Instrument wraps the API handler: latency by the net/http route pattern (set by the
// inner ServeMux on the request), so paths with keys do not explode the label set. The
// replication log stream is not timed (it lives as long as the consumer).
func (s *Server) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if route == "GET /api/v1/replication/log" {
			return
		}
		s.APILatency.WithLabelValues(route, r.Method, codeClass(rec.code)).Observe(time.Since(start).Seconds())
	})
}

var (
	descLogSeq   = prometheus.NewDesc(LogSeq, "Head sequence of the operation log.", nil, nil)
	descGateways = prometheus.NewDesc(GatewaysConnected, "Gateways that pushed statistics within the last two minutes.", nil, nil)
	descPeersBy  = prometheus.NewDesc(Peers, "Peers by state.", []string{"state"}, nil)
)

type serverCollector struct{ src ServerSources }

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLogSeq
	ch <- descGateways
	ch <- descPeersBy
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.LogSeq != nil {
		ch <- prometheus.MustNewConstMetric(descLogSeq, prometheus.GaugeValue, float64(c.src.LogSeq()))
	}
	if c.src.Gateways != nil {
		ch <- prometheus.MustNewConstMetric(descGateways, prometheus.GaugeValue, float64(c.src.Gateways()))
	}
	if c.src.PeersByState != nil {
		for st, n := range c.src.PeersByState() {
			ch <- prometheus.MustNewConstMetric(descPeersBy, prometheus.GaugeValue, float64(n), st)
		}
	}
}
