package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirefleet/wirefleet"
)

// PeerSample is one peer's counters as last read from a device.
type PeerSample struct {
	Network       string
	PublicKey     wirefleet.Key
	RxBytes       int64
	TxBytes       int64
	LastHandshake time.Time
}

// ReplicationSample is the follower's state at scrape time.
type ReplicationSample struct {
	Connected               bool
	Applied, Head           uint64
	Snapshots, Reloads, Ops uint64
}

// Gateway holds a managed gateway's metrics.
type Gateway struct {
	DriftRepairs  *prometheus.CounterVec   // network, kind
	ApplyDuration *prometheus.HistogramVec // type
	DeviceErrors  *prometheus.CounterVec   // network
	Propagation   prometheus.Histogram
}

// GatewaySources are read at scrape time.
type GatewaySources struct {
	// Peers returns the latest per-peer counters (the stats loop's last device read).
	Peers func() []PeerSample
	// Replication returns the follower's state.
	Replication func() ReplicationSample
	// Counts returns desired and active peers per network.
	Counts func() map[string][2]int
}

// NewGateway registers the gateway metrics on reg.
func NewGateway(reg prometheus.Registerer, src GatewaySources) *Gateway {
	g := &Gateway{
		DriftRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: DriftRepairs,
			Help: "Differences between the desired state and a device found and repaired by the drift check, by kind (missing, stray, altered, interface)."}, []string{"network", "kind"}),
		ApplyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ApplyDuration,
			Help:    "Time to apply one replicated op to the device.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"type"}),
		DeviceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: DeviceErrors,
			Help: "Failed device reads or writes."}, []string{"network"}),
		Propagation: prometheus.NewHistogram(prometheus.HistogramOpts{Name: Propagation,
			Help:    "Time from an op's commit on the control plane to its application on this gateway (needs synchronised clocks).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30}}),
	}
	reg.MustRegister(g.DriftRepairs, g.ApplyDuration, g.DeviceErrors, g.Propagation, &gatewayCollector{src})
	return g
}

var (
	descRx        = prometheus.NewDesc(PeerReceiveBytes, "Bytes received from the peer.", []string{"network", "public_key"}, nil)
	descTx        = prometheus.NewDesc(PeerTransmitBytes, "Bytes sent to the peer.", []string{"network", "public_key"}, nil)
	descHandshake = prometheus.NewDesc(PeerLastHandshake, "Unix time of the peer's latest handshake (0: never).", []string{"network", "public_key"}, nil)
	descApplied   = prometheus.NewDesc(AppliedSeq, "Sequence of the last op applied.", nil, nil)
	descHead      = prometheus.NewDesc(HeadSeq, "Last known sequence of the control plane's log.", nil, nil)
	descLag       = prometheus.NewDesc(ReplicationLag, "Ops known to the control plane and not yet applied.", nil, nil)
	descUp        = prometheus.NewDesc(ReplicationUp, "1 when the log stream is connected.", nil, nil)
	descSnaps     = prometheus.NewDesc(Snapshots, "Snapshots loaded.", nil, nil)
	descReloads   = prometheus.NewDesc(Reloads, "Snapshot reloads caused by horizon, diverged or compacted answers or a chain that failed verification.", nil, nil)
	descOps       = prometheus.NewDesc(OpsApplied, "Ops applied from the log stream.", nil, nil)
	descPeers     = prometheus.NewDesc(GatewayPeers, "Peers in the desired state, by network and state (desired, active).", []string{"network", "state"}, nil)
)

type gatewayCollector struct{ src GatewaySources }

func (c *gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRx, descTx, descHandshake, descApplied, descHead, descLag, descUp, descSnaps, descReloads, descOps, descPeers} {
		ch <- d
	}
}

func (c *gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Peers != nil {
		for _, p := range c.src.Peers() {
			k := p.PublicKey.String()
			ch <- prometheus.MustNewConstMetric(descRx, prometheus.CounterValue, float64(p.RxBytes), p.Network, k)
			ch <- prometheus.MustNewConstMetric(descTx, prometheus.CounterValue, float64(p.TxBytes), p.Network, k)
			hs := 0.0
			if !p.LastHandshake.IsZero() {
				hs = float64(p.LastHandshake.UnixNano()) / 1e9
			}
			ch <- prometheus.MustNewConstMetric(descHandshake, prometheus.GaugeValue, hs, p.Network, k)
		}
	}
	if c.src.Replication != nil {
		r := c.src.Replication()
		up := 0.0
		if r.Connected {
			up = 1
		}
		lag := 0.0
		if r.Head > r.Applied {
			lag = float64(r.Head - r.Applied)
		}
		ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(r.Applied))
		ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(r.Head))
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, lag)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
		ch <- prometheus.MustNewConstMetric(descSnaps, prometheus.CounterValue, float64(r.Snapshots))
		ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(r.Reloads))
		ch <- prometheus.MustNewConstMetric(descOps, prometheus.CounterValue, float64(r.Ops))
	}
	if c.src.Counts != nil {
		for n, v := range c.src.Counts() {
			ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(v[0]), n, "desired")
			ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(v[1]), n, "active")
		}
	}
}
