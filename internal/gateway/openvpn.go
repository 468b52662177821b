package gateway

import (
	"context"
	"log/slog"

	"github.com/wirefleet/wirefleet/internal/compat/vpndaemon"
	"github.com/wirefleet/wirefleet/internal/openvpn"
	"github.com/wirefleet/wirefleet/internal/sessions"
)

// newFleet is the OpenVPN management bridge over every *.sock in dir. One Fleet serves
// the vpn-daemon adapter, the metrics collector and the stats push, so management errors
// are counted in one place.
func newFleet(dir string, log *slog.Logger) *openvpn.Fleet {
	return openvpn.NewFleet(openvpn.FleetConfig{Dir: dir, Logger: log.With("component", "openvpn")})
}

// fleetOpenVPN adapts the OpenVPN management bridge (every *.sock in the socket directory,
// queried concurrently under one deadline) to the port the vpn-daemon handler consumes.
type fleetOpenVPN struct{ fleet *openvpn.Fleet }

var _ vpndaemon.OpenVPN = fleetOpenVPN{}

// Connections implements vpndaemon.OpenVPN. An address OpenVPN did not report stays empty
// (the handler then leaves the client out of connection_list).
func (o fleetOpenVPN) Connections(ctx context.Context) ([]vpndaemon.OpenVPNConnection, error) {
	cs, err := o.fleet.Connections(ctx)
	out := make([]vpndaemon.OpenVPNConnection, 0, len(cs))
	for _, c := range cs {
		conn := vpndaemon.OpenVPNConnection{CommonName: c.CommonName}
		if c.VirtualIPv4.IsValid() {
			conn.IPv4 = c.VirtualIPv4.String()
		}
		if c.VirtualIPv6.IsValid() {
			conn.IPv6 = c.VirtualIPv6.String()
		}
		out = append(out, conn)
	}
	return out, err
}

// Disconnect implements vpndaemon.OpenVPN.
func (o fleetOpenVPN) Disconnect(ctx context.Context, commonName string) error {
	_, err := o.fleet.Disconnect(ctx, commonName)
	return err
}

// openVPNReport reads every OpenVPN process for the stats push. reported is false when
// the socket directory could not be listed: the control plane then keeps the sessions it
// has (they close after its inactivity). Processes that did not answer are listed in
// unreachable, so their clients' sessions are not closed for a slow process either.
func openVPNReport(ctx context.Context, f *openvpn.Fleet) (clients []sessions.OpenVPNClient, unreachable []string, reported bool) {
	sts, err := f.Statuses(ctx)
	if err != nil {
		return nil, nil, false
	}
	clients = []sessions.OpenVPNClient{} // reported, even if empty
	for _, ps := range sts {
		if ps.Err != nil {
			unreachable = append(unreachable, ps.Name)
			continue
		}
		for _, c := range ps.Status.Clients {
			if c.CommonName == openvpn.UndefCommonName || c.CommonName == "" {
				continue
			}
			oc := sessions.OpenVPNClient{Process: ps.Name, CommonName: c.CommonName,
				BytesReceived: clampInt64(c.BytesReceived), BytesSent: clampInt64(c.BytesSent),
				ConnectedSince: c.ConnectedSince.UTC(), Endpoint: c.RealAddress}
			if c.VirtualIPv4.IsValid() {
				oc.IPv4 = c.VirtualIPv4.String()
			}
			if c.VirtualIPv6.IsValid() {
				oc.IPv6 = c.VirtualIPv6.String()
			}
			if oc.ConnectedSince.IsZero() || len(oc.Endpoint) > 64 {
				// The control plane refuses a report with such a client; one odd row
				// must not cost the whole push.
				continue
			}
			clients = append(clients, oc)
		}
	}
	return clients, unreachable, true
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}
