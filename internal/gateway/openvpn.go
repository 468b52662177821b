package gateway

import (
	"context"
	"log/slog"

	"github.com/wirefleet/wirefleet/internal/compat/vpndaemon"
	"github.com/wirefleet/wirefleet/internal/openvpn"
)

// fleetOpenVPN adapts the OpenVPN management bridge (every *.sock in the socket directory,
// queried concurrently under one deadline) to the port the vpn-daemon handler consumes.
type fleetOpenVPN struct{ fleet *openvpn.Fleet }

var _ vpndaemon.OpenVPN = fleetOpenVPN{}

func newOpenVPN(dir string, log *slog.Logger) fleetOpenVPN {
	return fleetOpenVPN{openvpn.NewFleet(openvpn.FleetConfig{Dir: dir, Logger: log.With("component", "openvpn")})}
}

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
