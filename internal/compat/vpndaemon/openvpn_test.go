package vpndaemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeOpenVPN stands in for the management-socket bridge.
type fakeOpenVPN struct {
	conns []OpenVPNConnection
	err   error
	delay time.Duration // ignores ctx while sleeping: a hung socket the bridge did not bound
	calls atomic.Int64

	mu     sync.Mutex // guards killed
	killed []string
}

func (f *fakeOpenVPN) Connections(ctx context.Context) ([]OpenVPNConnection, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	return f.conns, f.err
}

func (f *fakeOpenVPN) Disconnect(ctx context.Context, cn string) error {
	f.calls.Add(1)
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.killed = append(f.killed, cn)
	return f.err
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

func TestConnectionList(t *testing.T) {
	tests := []struct {
		name string
		ovpn OpenVPN
		want string
	}{
		{"no openvpn", nil, `{"connection_list":[]}`},
		{"filtered", &fakeOpenVPN{conns: []OpenVPNConnection{
			{"YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=", "198.51.100.3", "2001:db8::3"},
			{"UNDEF", "198.51.100.4", "2001:db8::4"},
			{"no-v6", "198.51.100.5", ""},
			{"no-v4", "", "2001:db8::6"},
			{"", "198.51.100.7", "2001:db8::7"},
		}}, `{"connection_list":[{"common_name":"YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=","ip_four":"198.51.100.3","ip_six":"2001:db8::3"}]}`},
		{"partial failure still lists", &fakeOpenVPN{conns: []OpenVPNConnection{{"a", "198.51.100.3", "2001:db8::3"}}, err: errors.New("server-2.sock: connection refused")},
			`{"connection_list":[{"common_name":"a","ip_four":"198.51.100.3","ip_six":"2001:db8::3"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.OpenVPN = tc.ovpn })
			r := f.do(t, http.MethodGet, "/o/connection_list", "")
			checkJSON(t, r)
			if diff := cmp.Diff(tc.want+"\n", r.body); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenVPNDeadline(t *testing.T) {
	const budget = 100 * time.Millisecond
	ovpn := &fakeOpenVPN{delay: 2 * time.Second, conns: []OpenVPNConnection{{"a", "198.51.100.3", "2001:db8::3"}}}
	f := newFixture(t, func(c *Config) { c.OpenVPN = ovpn; c.OpenVPNBudget = budget })
	for _, tc := range []struct{ method, target, form string }{
		{http.MethodGet, "/o/connection_list", ""},
		{http.MethodGet, "/i/node?include_client_peer_count=yes", ""},
		{http.MethodPost, "/o/disconnect_client", "common_name=a"},
	} {
		start := time.Now()
		r := f.do(t, tc.method, tc.target, tc.form)
		if took := time.Since(start); took > budget+time.Second {
			t.Errorf("%s took %v with a hung OpenVPN, want about %v", tc.target, took, budget)
		}
		if r.status/100 != 2 {
			t.Errorf("%s: %d %s, want success despite the hung OpenVPN", tc.target, r.status, r.body)
		}
	}
}

func TestDisconnectClient(t *testing.T) {
	cn := "DDoG0rDvZ1YufRdDHk37MdgOX+lBgKoBzgOQKJ5dzy4="
	ovpn := &fakeOpenVPN{}
	f := newFixture(t, func(c *Config) { c.OpenVPN = ovpn })
	r := f.do(t, http.MethodPost, "/o/disconnect_client", "common_name="+url.QueryEscape(cn))
	if r.status != http.StatusNoContent || r.body != "" {
		t.Fatalf("disconnect: %d %q, want 204", r.status, r.body)
	}
	ovpn.err = errors.New("no such client")
	if r := f.do(t, http.MethodPost, "/o/disconnect_client", "common_name=other"); r.status != http.StatusNoContent {
		t.Fatalf("best-effort disconnect: %d %q, want 204", r.status, r.body)
	}
	if diff := cmp.Diff([]string{cn, "other"}, ovpn.killed); diff != "" {
		t.Errorf("killed (-want +got):\n%s", diff)
	}
	// No OpenVPN running: still 204.
	f = newFixture(t)
	if r := f.do(t, http.MethodPost, "/o/disconnect_client", "common_name=x"); r.status != http.StatusNoContent {
		t.Fatalf("disconnect without OpenVPN: %d %q, want 204", r.status, r.body)
	}
}

func TestDisconnectClientBadInput(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"missing", "", "missing common_name"},
		{"empty", "common_name=", "missing common_name"},
		{"space", "common_name=a+b", `invalid common_name "a b": contains whitespace or a control character`},
		{"newline", "common_name=a%0Akill+b", `invalid common_name "a\nkill b": contains whitespace or a control character`},
		{"twice", "common_name=a&common_name=b", "common_name given 2 times, want exactly one"},
		{"not utf-8", "common_name=%FF", `invalid common_name "\xff": not valid UTF-8`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ovpn := &fakeOpenVPN{}
			f := newFixture(t, func(c *Config) { c.OpenVPN = ovpn })
			r := f.do(t, http.MethodPost, "/o/disconnect_client", tc.body)
			if r.status != 400 || r.body != tc.want+"\n" {
				t.Errorf("got %d %q, want 400 %q", r.status, r.body, tc.want)
			}
			if len(ovpn.killed) != 0 {
				t.Errorf("rejected request reached OpenVPN: %q", ovpn.killed)
			}
		})
	}
}

// deadlineOpenVPN honours ctx: one process answers at once, another hangs until ctx ends;
// at the deadline it returns what it has, as the real bridge does.
type deadlineOpenVPN struct{}

func (deadlineOpenVPN) Connections(ctx context.Context) ([]OpenVPNConnection, error) {
	<-ctx.Done()
	return []OpenVPNConnection{{"a", "198.51.100.3", "2001:db8::3"}}, errors.New("server-tcp: " + ctx.Err().Error())
}

func (deadlineOpenVPN) Disconnect(ctx context.Context, cn string) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestOpenVPNPartialAtDeadline: the answers of the processes that did answer are used
// even when another process used the whole budget.
func TestOpenVPNPartialAtDeadline(t *testing.T) {
	const budget = 300 * time.Millisecond
	f := newFixture(t, func(c *Config) { c.OpenVPN = deadlineOpenVPN{}; c.OpenVPNBudget = budget })
	start := time.Now()
	r := f.do(t, http.MethodGet, "/o/connection_list", "")
	// Without the deadline the hung process would hold the request forever; a second of
	// slack keeps the race-enabled pass on a loaded 2-core machine from flaking.
	if took := time.Since(start); took > budget+time.Second {
		t.Errorf("took %v, want within the %v budget", took, budget)
	}
	if want := `{"connection_list":[{"common_name":"a","ip_four":"198.51.100.3","ip_six":"2001:db8::3"}]}` + "\n"; r.body != want {
		t.Errorf("got %q, want the answering process's client", r.body)
	}
	if r := f.do(t, http.MethodPost, "/o/disconnect_client", "common_name=a"); r.status != http.StatusNoContent {
		t.Errorf("disconnect: %d", r.status)
	}
}
