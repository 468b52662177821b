package sessions

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

type memSink struct {
	mu sync.Mutex
	ev []Event
}

func (m *memSink) Send(e Event) { m.mu.Lock(); m.ev = append(m.ev, e); m.mu.Unlock() }
func (m *memSink) types() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.ev {
		out = append(out, e.Type)
	}
	return out
}

func key(b byte) wirefleet.Key {
	var k wirefleet.Key
	k[0] = b
	return k
}

func ts(t time.Time) *time.Time { return &t }

func TestSessionLifecycle(t *testing.T) {
	c := testenv.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	sink := &memSink{}
	tr := New(Config{Now: c.Now, Sinks: []Sink{sink}})
	k := key(1)
	push := func(gw string, hs *time.Time, rx, tx int64) {
		tr.Ingest(Report{Gateway: gw, Peers: []PeerStats{{Network: "a", PublicKey: k, LastHandshake: hs, RxBytes: rx, TxBytes: tx, Endpoint: "203.0.113.5:4000"}}}, nil)
	}
	push("gw1", nil, 0, 0)
	if len(tr.List(Filter{})) != 0 {
		t.Fatal("a session without a handshake")
	}
	c.Advance(10 * time.Second)
	h1 := c.Now().Add(-2 * time.Second)
	push("gw1", &h1, 100, 200) // connect (+100/+200 since the last report)
	c.Advance(10 * time.Second)
	push("gw1", &h1, 1100, 1200)     // +1000/+1000 on gw1
	push("gw2", nil, 50, 50)         // gw2 baseline
	push("gw2", ts(c.Now()), 80, 90) // roamed to gw2: +30/+40, newer handshake
	c.Advance(10 * time.Second)
	push("gw1", &h1, 10, 10) // gw1's device was recreated: counts from zero
	open := tr.List(Filter{State: "open"})
	if len(open) != 1 {
		t.Fatalf("open sessions: %+v", open)
	}
	s := open[0]
	if s.RxBytes != 1140 || s.TxBytes != 1250 || s.Gateway != "gw2" || !s.Start.Equal(h1) || s.Endpoint != "" {
		t.Errorf("session = %+v, want rx 1140 tx 1250 via gw2 from %v, no endpoint", s, h1)
	}
	c.Advance(589 * time.Second)
	if tr.Sweep() != 0 {
		t.Fatal("closed before the inactivity passed")
	}
	c.Advance(2 * time.Second)
	if tr.Sweep() != 1 {
		t.Fatal("not closed after the inactivity")
	}
	// The same (old) handshake must not reopen a session.
	push("gw1", &h1, 20, 20)
	if got := tr.List(Filter{State: "open"}); len(got) != 0 {
		t.Fatalf("reopened on an old handshake: %+v", got)
	}
	// A new handshake opens a new session.
	push("gw1", ts(c.Now()), 30, 30)
	if diff := cmp.Diff([]string{"connect", "disconnect", "connect"}, sink.types()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	all := tr.List(Filter{})
	if len(all) != 2 || !all[0].Open() || all[1].Open() {
		t.Errorf("list newest first: %+v", all)
	}
	if got := tr.LastSeenAll(nil); len(got) != 1 || got[0].Gateway != "gw1" {
		t.Errorf("last seen: %+v", got)
	}
}

func TestEndpointsOnlyWhenEnabled(t *testing.T) {
	c := testenv.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	tr := New(Config{Now: c.Now, KeepEndpoints: true})
	tr.Ingest(Report{Gateway: "g", Peers: []PeerStats{{Network: "a", PublicKey: key(1), LastHandshake: ts(c.Now()), Endpoint: "203.0.113.5:4000"}}}, nil)
	if s := tr.List(Filter{}); len(s) != 1 || s[0].Endpoint != "203.0.113.5:4000" {
		t.Errorf("%+v", s)
	}
	if e := tr.Events(time.Time{}, nil); len(e) != 1 || e[0].Session.Endpoint == "" {
		t.Errorf("%+v", e)
	}
}

func TestFilters(t *testing.T) {
	c := testenv.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	tr := New(Config{Now: c.Now})
	for i, n := range []string{"a", "a", "b"} {
		tr.Ingest(Report{Gateway: "g", Peers: []PeerStats{{Network: n, PublicKey: key(byte(i)), LastHandshake: ts(c.Now())}}}, nil)
		c.Advance(time.Minute)
	}
	c.Advance(20 * time.Minute)
	tr.Sweep()
	tr.Ingest(Report{Gateway: "g", Peers: []PeerStats{{Network: "a", PublicKey: key(0), LastHandshake: ts(c.Now())}}}, nil)
	k1 := key(1)
	tests := []struct {
		q    string
		want int
	}{
		{"", 4},
		{"network=a", 3},
		{"network=b", 1},
		{"state=open", 1},
		{"state=closed", 3},
		{"public_key=" + url.QueryEscape(k1.String()), 1},
		{"since=" + c.Now().Add(-time.Minute).Format(time.RFC3339), 4},
		{"limit=2", 2},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.q)
		f, err := ParseFilter(q)
		if err != nil {
			t.Fatalf("%s: %v", tt.q, err)
		}
		if got := len(tr.List(f)); got != tt.want {
			t.Errorf("%s: %d sessions, want %d", tt.q, got, tt.want)
		}
	}
	for _, bad := range []string{"state=x", "since=yesterday", "limit=0", "public_key=abc"} {
		q, _ := url.ParseQuery(bad)
		if _, err := ParseFilter(q); wirefleet.KindOf(err) != wirefleet.KindInvalid {
			t.Errorf("%s: %v, want invalid", bad, err)
		}
	}
}

func TestHandlers(t *testing.T) {
	c := testenv.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	h := Handler{T: New(Config{Now: c.Now})}
	gw := Caller{Name: "token:gw1", Networks: []string{"a"}}
	post := func(body string) (int, error) {
		w := httptest.NewRecorder()
		err := h.PushStats(w, httptest.NewRequest("POST", StatsPath, strings.NewReader(body)), gw)
		return w.Code, err
	}
	k := key(7)
	body, _ := json.Marshal(Report{Peers: []PeerStats{{Network: "a", PublicKey: k, LastHandshake: ts(c.Now()), RxBytes: 1}}})
	if code, err := post(string(body)); err != nil || code != 204 {
		t.Fatalf("push: %d %v", code, err)
	}
	other, _ := json.Marshal(Report{Peers: []PeerStats{{Network: "b", PublicKey: k}}})
	if _, err := post(string(other)); wirefleet.KindOf(err) != wirefleet.KindForbidden {
		t.Errorf("push for another network: %v, want forbidden", err)
	}
	if _, err := post(`{"peers":[{"network":"a"}]}`); wirefleet.KindOf(err) != wirefleet.KindInvalid {
		t.Errorf("push without key: %v", err)
	}
	w := httptest.NewRecorder()
	if err := h.List(w, httptest.NewRequest("GET", SessionsPath+"?network=a", nil), Caller{}); err != nil {
		t.Fatal(err)
	}
	var got struct{ Sessions []Session }
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	if len(got.Sessions) != 1 || got.Sessions[0].Gateway != "token:gw1" {
		t.Errorf("sessions: %s", w.Body)
	}
	if err := h.List(httptest.NewRecorder(), httptest.NewRequest("GET", SessionsPath+"?network=a", nil), Caller{Name: "x", Networks: []string{"b"}}); wirefleet.KindOf(err) != wirefleet.KindForbidden {
		t.Errorf("scoped list: %v", err)
	}
	w = httptest.NewRecorder()
	if err := h.Events(w, httptest.NewRequest("GET", EventsPath, nil), Caller{}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(w.Body)
	lines := 0
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Type != "connect" {
			t.Errorf("event line %q: %v", sc.Text(), err)
		}
		lines++
	}
	if lines != 1 {
		t.Errorf("%d event lines", lines)
	}
}

func TestWebhookSinkRetries(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var got []Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			var e Event
			_ = json.Unmarshal(sc.Bytes(), &e)
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	s := NewWebhookSink(srv.URL, nil, nil)
	s.Linger = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	s.Send(Event{Type: "connect", Session: Session{ID: "1"}})
	s.Send(Event{Type: "disconnect", Session: Session{ID: "1"}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %d events", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"connect", "disconnect"}, []string{got[0].Type, got[1].Type}); diff != "" {
		t.Error(diff)
	}
}

func TestFileSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s := NewFileSink(path, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	e := Event{Type: "connect", Time: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), Session: Session{ID: "x", Network: "a"}}
	s.Send(e)
	var b []byte
	for i := 0; i < 100 && len(b) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		b, _ = os.ReadFile(path)
	}
	cancel()
	<-done
	var got Event
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	if diff := cmp.Diff(e, got, cmpopts.EquateEmpty()); diff != "" {
		t.Error(diff)
	}
}

func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"gateway":"g","peers":[{"network":"a","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","rx_bytes":1}]}`))
	f.Add([]byte(`{"peers":[{"network":"A"}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"openvpn":[{"process":"udp","common_name":"a+/=","ipv4":"198.18.8.2","ipv6":"fd00::2","bytes_received":1,"bytes_sent":2,"connected_since":"2026-05-01T09:58:00Z"}],"openvpn_unreachable":["tcp"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ParseReport(b)
		if err != nil {
			return
		}
		for _, p := range rep.Peers {
			if p.RxBytes < 0 || p.TxBytes < 0 || wirefleet.ValidateNetworkName(p.Network) != nil {
				t.Fatalf("accepted %+v", p)
			}
		}
		for _, c := range rep.OpenVPN {
			_, ok4 := parseAddr(c.IPv4)
			_, ok6 := parseAddr(c.IPv6)
			if c.BytesReceived < 0 || c.BytesSent < 0 || c.Process == "" || c.CommonName == "" || c.ConnectedSince.IsZero() || !ok4 || !ok6 {
				t.Fatalf("accepted %+v", c)
			}
		}
	})
}

func FuzzParseFilter(f *testing.F) {
	f.Add("network=a&state=open&limit=5")
	f.Add("since=2026-01-02T15:04:05Z&public_key=x")
	f.Add("protocol=openvpn&common_name=a%2Bb")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		fl, err := ParseFilter(v)
		if err == nil && (fl.Limit < 0 || fl.State != "" && fl.State != "open" && fl.State != "closed" ||
			fl.Protocol != "" && fl.Protocol != ProtocolWireGuard && fl.Protocol != ProtocolOpenVPN) {
			t.Fatalf("accepted %+v", fl)
		}
	})
}
