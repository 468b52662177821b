package gateway

// /metrics, /healthz and /readyz of the standalone gateway, served on the vpn-daemon
// API's listener next to /i, /w and /o.

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirefleet/wirefleet/internal/metrics"
	"github.com/wirefleet/wirefleet/internal/openvpn"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// scrapeDeviceTimeout bounds the device read of one scrape.
const scrapeDeviceTimeout = 2 * time.Second

// standaloneRegistry builds the standalone gateway's registry: Go and process metrics,
// the per-peer WireGuard metrics (read from the device at scrape time, labelled with the
// interface name as network) and the OpenVPN collector over fleet.
func standaloneRegistry(dev wgdev.Device, iface string, fleet *openvpn.Fleet, log *slog.Logger) *prometheus.Registry {
	reg := metrics.NewRegistry()
	metrics.NewGateway(reg, metrics.GatewaySources{Peers: func() []metrics.PeerSample {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeDeviceTimeout)
		defer cancel()
		ps, err := dev.Peers(ctx)
		if err != nil {
			log.Warn("metrics: read device failed", "device", iface, "err", err)
			return nil
		}
		out := make([]metrics.PeerSample, 0, len(ps))
		for _, p := range ps {
			out = append(out, metrics.PeerSample{Network: iface, PublicKey: p.PublicKey, RxBytes: p.RxBytes, TxBytes: p.TxBytes, LastHandshake: p.LastHandshake})
		}
		return out
	}})
	reg.MustRegister(openvpn.NewCollector(fleet))
	return reg
}

// withObservability serves /metrics, /healthz and /readyz from ops and every other path
// from api. It dispatches on the exact path instead of wrapping api in a ServeMux, which
// would redirect the "//i/node" vpn-daemon serves as is.
func withObservability(api http.Handler, reg *prometheus.Registry, ready func(context.Context) error) http.Handler {
	ops := http.NewServeMux()
	metrics.Mount(ops, reg, ready)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics", "/healthz", "/readyz":
			ops.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}
