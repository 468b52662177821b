package openvpn

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	f := newFleetFixture(t)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(f.fleet)); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP wirefleet_openvpn_clients Authenticated clients connected to the OpenVPN process.
# TYPE wirefleet_openvpn_clients gauge
wirefleet_openvpn_clients{process="alpha"} 2
wirefleet_openvpn_clients{process="beta"} 2
# HELP wirefleet_openvpn_client_received_bytes_total Bytes the OpenVPN server received from the client on this connection.
# TYPE wirefleet_openvpn_client_received_bytes_total counter
wirefleet_openvpn_client_received_bytes_total{client_id="1",common_name="kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=",process="alpha"} 10
wirefleet_openvpn_client_received_bytes_total{client_id="3",common_name="DDoG0rDvZ1YufRdDHk37MdgOX+lBgKoBzgOQKJ5dzy4=",process="alpha"} 0
wirefleet_openvpn_client_received_bytes_total{client_id="7",common_name="kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=",process="beta"} 30
wirefleet_openvpn_client_received_bytes_total{client_id="8",common_name="YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=",process="beta"} 0
# HELP wirefleet_openvpn_client_sent_bytes_total Bytes the OpenVPN server sent to the client on this connection.
# TYPE wirefleet_openvpn_client_sent_bytes_total counter
wirefleet_openvpn_client_sent_bytes_total{client_id="1",common_name="kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=",process="alpha"} 20
wirefleet_openvpn_client_sent_bytes_total{client_id="3",common_name="DDoG0rDvZ1YufRdDHk37MdgOX+lBgKoBzgOQKJ5dzy4=",process="alpha"} 0
wirefleet_openvpn_client_sent_bytes_total{client_id="7",common_name="kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=",process="beta"} 40
wirefleet_openvpn_client_sent_bytes_total{client_id="8",common_name="YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=",process="beta"} 0
# HELP wirefleet_openvpn_management_errors_total Failed management-interface operations (op: discover, status, kill) since start.
# TYPE wirefleet_openvpn_management_errors_total counter
wirefleet_openvpn_management_errors_total{op="status",process="hung"} 1
wirefleet_openvpn_management_errors_total{op="status",process="stale"} 1
# HELP wirefleet_openvpn_up 1 if the OpenVPN process answered on its management socket during this scrape, else 0.
# TYPE wirefleet_openvpn_up gauge
wirefleet_openvpn_up{process="alpha"} 1
wirefleet_openvpn_up{process="beta"} 1
wirefleet_openvpn_up{process="hung"} 0
wirefleet_openvpn_up{process="stale"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
