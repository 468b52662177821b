package vpndaemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// TestConcurrentRequestsRealDevice fires hundreds of concurrent add/re-add/remove requests
// at the binary over its userspace device and checks both the API's view and the device's
// own (wg show dump over the UAPI socket) against the one state every interleaving reaches.
func TestConcurrentRequestsRealDevice(t *testing.T) {
	testenv.Privileged(t, "wg")
	ns := testenv.NewNetNS(t, "gwc")
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: dialer(ns.Name), MaxIdleConnsPerHost: 64}}
	g := newGateway(t, ns, nil, client, "")
	g.start()

	const n = 300
	want := map[string]string{} // key → allowed IPs as wg shows them
	var wantMu sync.Mutex
	var retries atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		priv, err := wirefleet.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		key := priv.PublicKey().String()
		wg.Go(func() {
			first := fmt.Sprintf("2001:db8:%x::1/128", i+1)
			second := fmt.Sprintf("2001:db8:%x::2/128", i+1)
			steps := []struct{ path, body string }{
				{"/w/add_peer", "public_key=" + url.QueryEscape(key) + "&ip_net=" + url.QueryEscape(first)},
				{"/w/add_peer", "public_key=" + url.QueryEscape(key) + "&ip_net=" + url.QueryEscape(second)},
			}
			if i%2 == 1 {
				steps = append(steps, struct{ path, body string }{"/w/remove_peer", "public_key=" + url.QueryEscape(key)})
			} else {
				wantMu.Lock()
				want[key] = second
				wantMu.Unlock()
			}
			for _, s := range steps {
				// 503 means the request waited for the device longer than its budget and
				// changed nothing (a loaded 2-core CI machine); the portal retries on its next
				// sync, this test a few times. Any other failure is one.
				for attempt := 1; ; attempt++ {
					req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+s.path, strings.NewReader(s.body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := client.Do(req)
					if err != nil {
						errs <- fmt.Errorf("%s: %v", s.path, err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusServiceUnavailable && attempt < 5 {
						retries.Add(1)
						continue
					}
					if resp.StatusCode/100 != 2 {
						errs <- fmt.Errorf("%s %s: status %d", s.path, s.body, resp.StatusCode)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if n := retries.Load(); n > 0 {
		t.Logf("%d requests answered 503 (busy) and were retried", n)
	}
	for err := range errs {
		t.Error(err)
	}

	status, raw, err := g.get("/w/peer_list?show_all=yes")
	if err != nil || status != 200 {
		t.Fatalf("peer_list: %d %v", status, err)
	}
	var list struct {
		PeerList []peerJSON `json:"peer_list"`
	}
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatal(err)
	}
	api := map[string]string{}
	for _, p := range list.PeerList {
		api[p.PublicKey] = strings.Join(p.IPNet, ",")
	}
	if diff := cmp.Diff(want, api); diff != "" {
		t.Errorf("peer_list after concurrent requests (-want +got):\n%s", diff)
	}
	// The device itself, through the stock tool.
	dump := map[string]string{}
	lines := strings.Split(strings.TrimSpace(ns.Exec(t, "wg", "show", g.dev, "dump")), "\n")
	for _, l := range lines[1:] { // the first line is the interface
		f := strings.Split(l, "\t")
		if len(f) < 4 {
			t.Fatalf("wg show dump line %q", l)
		}
		ips := strings.Split(f[3], ",")
		sort.Strings(ips)
		dump[f[0]] = strings.Join(ips, ",")
	}
	if diff := cmp.Diff(want, dump); diff != "" {
		t.Errorf("wg show dump after concurrent requests (-want +got):\n%s", diff)
	}
}
