package enabler

// What makes the enabler's clients ordinary peers of the fleet beyond the store: per-peer
// metrics read from the enabler's device, sessions derived from its statistics (the same
// report a managed gateway pushes, under the gateway name "local"), and the replication
// routes, so that a remote `wirefleet gateway -control` serves the same clients.

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/api/mount"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/metrics"
	"github.com/wirefleet/wirefleet/internal/replication"
	"github.com/wirefleet/wirefleet/internal/sessions"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// LocalGatewayName is the gateway name of the enabler's own device in sessions.
const LocalGatewayName = "local"

// DefaultStatsInterval is the period of the device read that feeds sessions (a managed
// gateway's default push period).
const DefaultStatsInterval = 30 * time.Second

// scrapeTimeout bounds the device read of one scrape.
const scrapeTimeout = 2 * time.Second

// observer holds the registry, the session tracker and the replication handler.
type observer struct {
	reg     *prometheus.Registry
	srvm    *metrics.Server
	tracker *sessions.Tracker
	repl    *replication.Handler
	dev     wgdev.Device
	network string
	every   time.Duration
	log     *slog.Logger
	// stopStreams ends the replication log streams, which never end by themselves (an
	// HTTP server's Shutdown would wait for them).
	stopStreams func()
}

func newObserver(svc *control.Service, dev wgdev.Device, network string, every time.Duration, log *slog.Logger) *observer {
	if every <= 0 {
		every = DefaultStatsInterval
	}
	o := &observer{reg: metrics.NewRegistry(), dev: dev, network: network, every: every, log: log}
	o.tracker = sessions.New(sessions.Config{Logger: log})
	metrics.NewGateway(o.reg, metrics.GatewaySources{Peers: o.samples})
	o.srvm = metrics.NewServer(o.reg, metrics.ServerSources{
		LogSeq: func() uint64 {
			seq, _, _ := svc.Head(context.Background())
			return seq
		},
		Gateways: func() int { return o.tracker.Gateways(2 * time.Minute) },
	})
	stop := make(chan struct{})
	o.stopStreams = sync.OnceFunc(func() { close(stop) })
	o.repl = replication.NewHandler(replication.Options{Source: svc, Logger: log, Stop: stop,
		Streams: func(d int, c replication.Caller) { o.srvm.Streams.WithLabelValues(roleLabel(c)).Add(float64(d)) }})
	return o
}

// samples reads the device at scrape time: the counters are the device's, not a copy
// that could lag behind.
func (o *observer) samples() []metrics.PeerSample {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	ps, err := o.dev.Peers(ctx)
	if err != nil {
		o.log.Warn("metrics: read device failed", "network", o.network, "err", err)
		return nil
	}
	out := make([]metrics.PeerSample, 0, len(ps))
	for _, p := range ps {
		out = append(out, metrics.PeerSample{Network: o.network, PublicKey: p.PublicKey, RxBytes: p.RxBytes, TxBytes: p.TxBytes, LastHandshake: p.LastHandshake})
	}
	return out
}

// report is the device's statistics in the shape a managed gateway pushes.
func (o *observer) report(ctx context.Context) (sessions.Report, error) {
	ps, err := o.dev.Peers(ctx)
	if err != nil {
		return sessions.Report{}, err
	}
	rep := sessions.Report{Gateway: LocalGatewayName, Time: time.Now().UTC(), Peers: make([]sessions.PeerStats, 0, len(ps))}
	for _, p := range ps {
		var hs *time.Time
		if !p.LastHandshake.IsZero() {
			h := p.LastHandshake.UTC()
			hs = &h
		}
		ep := ""
		if p.Endpoint.IsValid() {
			ep = p.Endpoint.String()
		}
		rep.Peers = append(rep.Peers, sessions.PeerStats{Network: o.network, PublicKey: p.PublicKey, LastHandshake: hs, RxBytes: p.RxBytes, TxBytes: p.TxBytes, Endpoint: ep})
	}
	return rep, nil
}

// collect feeds the tracker once.
func (o *observer) collect(ctx context.Context) {
	rep, err := o.report(ctx)
	if err != nil {
		o.log.Warn("sessions: read device failed", "network", o.network, "err", err)
		return
	}
	o.tracker.Ingest(rep, nil)
}

// Run feeds the tracker from the device every interval (and once at start) and sweeps
// inactive sessions, until ctx ends.
func (o *observer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = o.tracker.Run(ctx) })
	defer wg.Wait()
	t := time.NewTicker(o.every)
	defer t.Stop()
	for {
		o.collect(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// apiRoutes are the replication and sessions routes as the API's route table calls them.
func (o *observer) apiRoutes() (api.Replication, api.Sessions) {
	return mount.Replication(o.repl), mount.Sessions(sessions.Handler{T: o.tracker})
}

// restHandler serves the REST API and /metrics, with API latency recorded by route.
func (o *observer) restHandler(apiHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", apiHandler)
	mux.Handle("GET /metrics", metrics.Handler(o.reg))
	return o.srvm.Instrument(mux)
}

// metricsHandler serves /metrics, /healthz and /readyz (ready: the device answers).
func (o *observer) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	metrics.Mount(mux, o.reg, func(ctx context.Context) error {
		_, err := o.dev.Info(ctx)
		return err
	})
	return mux
}

// roleLabel picks the replication role of a caller for the streams metric.
func roleLabel(c replication.Caller) string {
	for _, r := range c.Roles {
		switch r {
		case wirefleet.RoleGateway, wirefleet.RoleFollower, wirefleet.RoleAdmin:
			return string(r)
		}
	}
	return "other"
}
