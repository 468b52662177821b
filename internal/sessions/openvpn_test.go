package sessions

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

const cnA = "kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s="

func TestOpenVPNSessionLifecycle(t *testing.T) {
	c := testenv.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	sink := &memSink{}
	tr := New(Config{Now: c.Now, Sinks: []Sink{sink}})
	since := c.Now().Add(-time.Minute)
	client := func(rx, tx int64, since time.Time) OpenVPNClient {
		return OpenVPNClient{Process: "udp", CommonName: cnA, IPv4: "198.18.8.2", IPv6: "fd00:8::1000",
			BytesReceived: rx, BytesSent: tx, ConnectedSince: since, Endpoint: "203.0.113.5:1194"}
	}
	push := func(gw string, unreachable []string, cs ...OpenVPNClient) {
		if cs == nil {
			cs = []OpenVPNClient{}
		}
		tr.Ingest(Report{Gateway: gw, OpenVPN: cs, OpenVPNUnreachable: unreachable}, nil)
	}
	push("gw1", nil, client(100, 200, since))
	c.Advance(30 * time.Second)
	push("gw1", nil, client(1100, 2200, since))
	want := Session{Protocol: ProtocolOpenVPN, Gateway: "gw1", Process: "udp", CommonName: cnA,
		IPv4: "198.18.8.2", IPv6: "fd00:8::1000",
		Start: since, LastSeen: c.Now(), RxBytes: 1100, TxBytes: 2200}
	got := tr.List(Filter{Protocol: ProtocolOpenVPN})
	if len(got) != 1 {
		t.Fatalf("sessions: %+v", got)
	}
	first := got[0].ID
	got[0].ID = ""
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("session (-want +got):\n%s", diff)
	}

	// Another gateway's report, a WireGuard-only report (no openvpn array) and a report
	// whose process did not answer close nothing.
	push("gw2", nil)
	tr.Ingest(Report{Gateway: "gw1", Peers: []PeerStats{{Network: "a", PublicKey: key(1)}}}, nil)
	push("gw1", []string{"udp"})
	if got := tr.List(Filter{State: "open"}); len(got) != 1 || got[0].ID != first {
		t.Fatalf("closed by an unrelated report: %+v", got)
	}

	// A reconnect (new connected-since) is a new session; the old one closes because it
	// is no longer listed.
	c.Advance(30 * time.Second)
	since2 := c.Now().Add(-time.Second)
	push("gw1", nil, client(10, 20, since2))
	open := tr.List(Filter{State: "open"})
	closed := tr.List(Filter{State: "closed"})
	if len(open) != 1 || open[0].ID == first || !open[0].Start.Equal(since2) || open[0].RxBytes != 10 {
		t.Errorf("open after reconnect: %+v", open)
	}
	if len(closed) != 1 || closed[0].ID != first || closed[0].End == nil || !closed[0].End.Equal(c.Now()) || closed[0].RxBytes != 1100 {
		t.Errorf("closed after reconnect: %+v", closed)
	}

	// The client disappears: closed at once.
	c.Advance(time.Second)
	push("gw1", nil)
	if got := tr.List(Filter{State: "open"}); len(got) != 0 {
		t.Errorf("open after the client left: %+v", got)
	}
	if diff := cmp.Diff([]string{"connect", "connect", "disconnect", "disconnect"}, sink.types()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, e := range tr.Events(time.Time{}, nil) {
		if e.Session.Endpoint != "" {
			t.Errorf("endpoint kept without KeepEndpoints: %+v", e)
		}
	}
}

func TestOpenVPNSessionClosesAfterInactivity(t *testing.T) {
	c := testenv.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	tr := New(Config{Now: c.Now, Inactivity: time.Minute, KeepEndpoints: true})
	tr.Ingest(Report{Gateway: "gw1", OpenVPN: []OpenVPNClient{{Process: "tcp", CommonName: "x", ConnectedSince: c.Now(), Endpoint: "203.0.113.9:443"}}}, nil)
	c.Advance(59 * time.Second)
	if tr.Sweep() != 0 {
		t.Fatal("closed before the inactivity passed")
	}
	c.Advance(time.Second) // the gateway stopped reporting
	if tr.Sweep() != 1 {
		t.Fatal("not closed after the inactivity")
	}
	if s := tr.List(Filter{}); len(s) != 1 || s[0].Open() || s[0].Endpoint != "203.0.113.9:443" {
		t.Errorf("%+v", s)
	}
}

func TestProtocolFilters(t *testing.T) {
	c := testenv.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	tr := New(Config{Now: c.Now})
	tr.Ingest(Report{Gateway: "g", Peers: []PeerStats{{Network: "a", PublicKey: key(1), LastHandshake: ts(c.Now())}},
		OpenVPN: []OpenVPNClient{{Process: "udp", CommonName: cnA, ConnectedSince: c.Now()}, {Process: "tcp", CommonName: "other", ConnectedSince: c.Now()}}}, nil)
	for _, tt := range []struct {
		q        string
		networks []string
		want     int
	}{
		{"", nil, 3},
		{"protocol=wireguard", nil, 1},
		{"protocol=openvpn", nil, 2},
		{"protocol=openvpn&common_name=" + url.QueryEscape(cnA), nil, 1},
		{"network=a", nil, 1},
		{"protocol=openvpn", []string{"a"}, 0}, // OpenVPN sessions belong to no network
	} {
		q, _ := url.ParseQuery(tt.q)
		f, err := ParseFilter(q)
		if err != nil {
			t.Fatalf("%s: %v", tt.q, err)
		}
		f.Networks = tt.networks
		if got := len(tr.List(f)); got != tt.want {
			t.Errorf("%s (scope %v): %d sessions, want %d", tt.q, tt.networks, got, tt.want)
		}
	}
	q, _ := url.ParseQuery("protocol=ipsec")
	if _, err := ParseFilter(q); wirefleet.KindOf(err) != wirefleet.KindInvalid {
		t.Errorf("protocol=ipsec: %v, want invalid", err)
	}
}

// TestOpenVPNWireFormat pins the JSON of the report and of sessions (the contract with
// gateways and API clients; docs/openapi.yaml).
func TestOpenVPNWireFormat(t *testing.T) {
	c := testenv.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	h := Handler{T: New(Config{Now: c.Now})}
	body := `{"gateway":"gw1","time":"2026-05-01T10:00:00Z","peers":[{"network":"a","public_key":"` + key(1).String() + `","last_handshake":"2026-05-01T09:59:00Z","rx_bytes":1,"tx_bytes":2}],
	  "openvpn":[{"process":"udp","common_name":"` + cnA + `","ipv4":"198.18.8.2","ipv6":"fd00:8::1000","bytes_received":5,"bytes_sent":6,"connected_since":"2026-05-01T09:58:00Z"}]}`
	w := httptest.NewRecorder()
	// A gateway token scoped to network a may report OpenVPN clients.
	if err := h.PushStats(w, httptest.NewRequest("POST", StatsPath, strings.NewReader(body)), Caller{Name: "token:gw", Networks: []string{"a"}}); err != nil || w.Code != 204 {
		t.Fatalf("push: %d %v", w.Code, err)
	}
	w = httptest.NewRecorder()
	if err := h.List(w, httptest.NewRequest("GET", SessionsPath, nil), Caller{}); err != nil {
		t.Fatal(err)
	}
	var got struct{ Sessions []map[string]any }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Sessions) != 2 {
		t.Fatalf("%s: %v", w.Body, err)
	}
	for _, s := range got.Sessions {
		delete(s, "id")
	}
	want := []map[string]any{
		{"protocol": "wireguard", "network": "a", "public_key": key(1).String(), "gateway": "gw1", "start": "2026-05-01T09:59:00Z",
			"last_seen": "2026-05-01T09:59:00Z", "end": nil, "rx_bytes": 0.0, "tx_bytes": 0.0},
		{"protocol": "openvpn", "process": "udp", "common_name": cnA, "ipv4": "198.18.8.2", "ipv6": "fd00:8::1000", "gateway": "gw1",
			"start": "2026-05-01T09:58:00Z", "last_seen": "2026-05-01T10:00:00Z", "end": nil, "rx_bytes": 5.0, "tx_bytes": 6.0},
	}
	if diff := cmp.Diff(want, got.Sessions); diff != "" {
		t.Errorf("sessions JSON (-want +got):\n%s", diff)
	}
}

func TestParseReportOpenVPN(t *testing.T) {
	ok := `"process":"udp","common_name":"a b+/=","connected_since":"2026-05-01T09:58:00Z"`
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{`{"openvpn":[{` + ok + `}]}`, true},
		{`{"openvpn":[{` + ok + `,"ipv4":"198.18.8.2","ipv6":"fd00::1"}]}`, true},
		{`{"openvpn":[],"openvpn_unreachable":["udp"]}`, true},
		{`{"openvpn":[{"process":"udp","common_name":"x"}]}`, false},
		{`{"openvpn":[{"process":"","common_name":"x","connected_since":"2026-05-01T09:58:00Z"}]}`, false},
		{`{"openvpn":[{"process":"a/b","common_name":"x","connected_since":"2026-05-01T09:58:00Z"}]}`, false},
		{`{"openvpn":[{"process":"udp","common_name":"x\n","connected_since":"2026-05-01T09:58:00Z"}]}`, false},
		{`{"openvpn":[{` + ok + `,"ipv4":"198.18.8.999"}]}`, false},
		{`{"openvpn":[{` + ok + `,"ipv6":"fe80::1%eth0"}]}`, false},
		{`{"openvpn":[{` + ok + `,"bytes_sent":-1}]}`, false},
		{`{"openvpn":[],"openvpn_unreachable":[""]}`, false},
	} {
		_, err := ParseReport([]byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok=%v", tt.body, err, tt.ok)
		}
		if err != nil && wirefleet.KindOf(err) != wirefleet.KindInvalid {
			t.Errorf("%s: %v, want invalid", tt.body, err)
		}
	}
	// Absent and null mean "not reported", [] means "none".
	for body, reported := range map[string]bool{`{}`: false, `{"openvpn":null}`: false, `{"openvpn":[]}`: true} {
		if r, err := ParseReport([]byte(body)); err != nil || (r.OpenVPN != nil) != reported {
			t.Errorf("%s: %+v %v, want reported=%v", body, r, err, reported)
		}
	}
}
