package openvpn

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; the composition root registers NewCollector on its own registry.
var (
	descUp = prometheus.NewDesc("wirefleet_openvpn_up",
		"1 if the OpenVPN process answered on its management socket during this scrape, else 0.",
		[]string{"process"}, nil)
	descClients = prometheus.NewDesc("wirefleet_openvpn_clients",
		"Authenticated clients connected to the OpenVPN process.",
		[]string{"process"}, nil)
	descRx = prometheus.NewDesc("wirefleet_openvpn_client_received_bytes_total",
		"Bytes the OpenVPN server received from the client on this connection.",
		[]string{"process", "common_name", "client_id"}, nil)
	descTx = prometheus.NewDesc("wirefleet_openvpn_client_sent_bytes_total",
		"Bytes the OpenVPN server sent to the client on this connection.",
		[]string{"process", "common_name", "client_id"}, nil)
	descErrors = prometheus.NewDesc("wirefleet_openvpn_management_errors_total",
		"Failed management-interface operations (op: discover, status, kill) since start.",
		[]string{"process", "op"}, nil)
)

// NewCollector returns a Prometheus collector for the fleet. Each scrape asks every
// process for its status (one deadline, as for any Fleet call), so values are current
// and nothing runs between scrapes.
func NewCollector(f *Fleet) prometheus.Collector { return &collector{f: f} }

type collector struct{ f *Fleet }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descClients, descRx, descTx, descErrors} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	// The scrape has no context of its own; the fleet's timeout bounds it.
	sts, _ := c.f.Statuses(context.Background())
	for _, ps := range sts {
		if ps.Err != nil {
			send(ch, descUp, prometheus.GaugeValue, 0, ps.Name)
			continue
		}
		send(ch, descUp, prometheus.GaugeValue, 1, ps.Name)
		n := 0
		seen := map[uint64]bool{}
		for _, cl := range ps.Status.Clients {
			if cl.CommonName == UndefCommonName || cl.CommonName == "" {
				continue
			}
			n++
			// Client ids are unique within a process; a duplicate would make the
			// whole scrape fail, so a broken status cannot do that.
			if seen[cl.ClientID] {
				continue
			}
			seen[cl.ClientID] = true
			id := strconv.FormatUint(cl.ClientID, 10)
			send(ch, descRx, prometheus.CounterValue, float64(cl.BytesReceived), ps.Name, cl.CommonName, id)
			send(ch, descTx, prometheus.CounterValue, float64(cl.BytesSent), ps.Name, cl.CommonName, id)
		}
		send(ch, descClients, prometheus.GaugeValue, float64(n), ps.Name)
	}
	for k, v := range c.f.ManagementErrors() {
		send(ch, descErrors, prometheus.CounterValue, float64(v), k.Process, k.Op)
	}
}

// send emits one metric, dropping it if a label value is not valid UTF-8 (a socket or CN
// name OpenVPN did not sanitize) rather than panicking in the scrape.
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	if m, err := prometheus.NewConstMetric(d, t, v, labels...); err == nil {
		ch <- m
	}
}
