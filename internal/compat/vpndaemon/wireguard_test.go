package vpndaemon

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// portalForm encodes a form exactly as the portal's PHP does: urlencode()d values, ip_net
// repeated without "[]".
func portalForm(key string, nets ...string) string {
	var b strings.Builder
	b.WriteString("public_key=" + url.QueryEscape(key))
	for _, n := range nets {
		b.WriteString("&ip_net=" + url.QueryEscape(n))
	}
	return b.String()
}

func TestAddPeerPortalEncoding(t *testing.T) {
	f := newFixture(t)
	form := portalForm(keyA, "198.51.100.9/32", "fd00:6916:e5a0:6999::9/128")
	if !strings.Contains(form, "%2B") || !strings.Contains(form, "%2F32") {
		t.Fatalf("form %q is not encoded as the portal does", form)
	}
	r := f.do(t, http.MethodPost, "/w/add_peer", form)
	if r.status != http.StatusNoContent || r.body != "" {
		t.Fatalf("add_peer: %d %q, want 204 and no body", r.status, r.body)
	}
	got := f.peers(t)
	want := []wgdev.PeerStatus{{Peer: wgdev.Peer{
		PublicKey:  wirefleet.MustParseKey(keyA),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.9/32"), netip.MustParsePrefix("fd00:6916:e5a0:6999::9/128")},
	}}}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("device after add_peer (-want +got):\n%s", diff)
	}
}

func TestAddPeerUpdatesInPlace(t *testing.T) {
	f := newFixture(t)
	k := wirefleet.MustParseKey(keyA)
	if r := f.do(t, http.MethodPost, "/w/add_peer", portalForm(keyA, "198.51.100.9/32")); r.status != 204 {
		t.Fatalf("first add: %d %s", r.status, r.body)
	}
	hs := epoch.Add(-time.Minute)
	f.dev.SetStats(k, hs, 1000, 2000)
	applies := f.dev.Applies()
	if r := f.do(t, http.MethodPost, "/w/add_peer", portalForm(keyA, "198.51.100.10/32", "2001:db8::10/128")); r.status != 204 {
		t.Fatalf("second add: %d %s", r.status, r.body)
	}
	if n := f.dev.Applies() - applies; n != 1 {
		t.Errorf("re-add made %d device applies, want 1 (an upsert, never remove-then-add)", n)
	}
	want := []wgdev.PeerStatus{{
		Peer: wgdev.Peer{PublicKey: k, AllowedIPs: []netip.Prefix{
			netip.MustParsePrefix("198.51.100.10/32"), netip.MustParsePrefix("2001:db8::10/128")}},
		LastHandshake: hs, RxBytes: 1000, TxBytes: 2000,
	}}
	if diff := cmp.Diff(want, f.peers(t), cmpOpts); diff != "" {
		t.Errorf("device after re-add (-want +got):\n%s", diff)
	}
}

func TestAddPeerBadInput(t *testing.T) {
	tests := []struct {
		name, contentType, body, want string
	}{
		{"missing key", "", "ip_net=198.51.100.9%2F32", "missing public_key"},
		{"empty key", "", "public_key=&ip_net=198.51.100.9%2F32", "missing public_key"},
		{"two keys", "", portalForm(keyA, "198.51.100.9/32") + "&public_key=" + url.QueryEscape(keyB), "public_key given 2 times, want exactly one"},
		{"not base64", "", "public_key=not-a-key!&ip_net=198.51.100.9%2F32", `invalid public_key: key "not-a-key!" is not valid base64`},
		{"plus decoded as space", "", "public_key=" + keyA + "&ip_net=198.51.100.9%2F32", `invalid public_key: key "kNLsIjAxQ8w3PWgj Bx8mDComLFPKgCrxPvvq0Lsq2s=" is not valid base64`},
		{"short key", "", portalForm("AAAAAAAAAAAAAAAAAAAAAA==", "198.51.100.9/32"), `invalid public_key: key "AAAAAAAAAAAAAAAAAAAAAA==" decodes to 16 bytes, want 32`},
		{"long key", "", portalForm(strings.Repeat("A", 500), "198.51.100.9/32"), "invalid public_key: 500 characters long, want 44 characters of base64"},
		{"zero key", "", portalForm("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "198.51.100.9/32"), "invalid public_key: all 32 bytes are zero"},
		{"own key", "", portalForm("ZOwnZOwnZOwnZOwnZOwnZOwnZOwnZOwnZOwnZOwnZOw=", "198.51.100.9/32"), "invalid public_key: it is this node's own public key"},
		{"missing ip_net", "", portalForm(keyA), "missing ip_net: give at least one CIDR such as 198.51.100.2/32"},
		{"empty ip_net", "", portalForm(keyA, ""), `invalid ip_net "": empty, want a CIDR such as 198.51.100.2/32`},
		{"ip without length", "", portalForm(keyA, "198.51.100.9"), `invalid ip_net "198.51.100.9": no prefix length, want a CIDR such as 198.51.100.2/32`},
		{"garbage ip_net", "", portalForm(keyA, "198.51.100.9/32", "nope/32"), `invalid ip_net "nope/32": not a CIDR such as 198.51.100.2/32 or 2001:db8::2/128`},
		{"length too long", "", portalForm(keyA, "198.51.100.9/33"), `invalid ip_net "198.51.100.9/33": not a CIDR such as 198.51.100.2/32 or 2001:db8::2/128`},
		{"host bits v4", "", portalForm(keyA, "198.51.100.5/24"), `invalid ip_net "198.51.100.5/24": host bits set, use 198.51.100.0/24 or a /32`},
		{"host bits v6", "", portalForm(keyA, "2001:db8::5/64"), `invalid ip_net "2001:db8::5/64": host bits set, use 2001:db8::/64 or a /128`},
		{"mapped v6", "", portalForm(keyA, "::ffff:198.51.100.9/128"), `invalid ip_net "::ffff:198.51.100.9/128": IPv4-mapped IPv6 address, write the IPv4 CIDR instead`},
		{"zone", "", portalForm(keyA, "fe80::1%eth0/128"), `invalid ip_net "fe80::1%eth0/128": not a CIDR such as 198.51.100.2/32 or 2001:db8::2/128`},
		{"bad escape", "", "public_key=%zz&ip_net=198.51.100.9%2F32", `request body is not a valid urlencoded form: invalid URL escape "%zz"`},
		{"json body", "application/json", `{"public_key":"` + keyA + `"}`, `Content-Type "application/json" is not supported: send application/x-www-form-urlencoded`},
		{"oversized", "", portalForm(keyA, "198.51.100.9/32") + "&pad=" + strings.Repeat("x", MaxBodyBytes), "request body is larger than 65536 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// An existing peer, so "unchanged" is more than "still empty".
			if r := f.do(t, http.MethodPost, "/w/add_peer", portalForm(keyB, "198.51.100.20/32")); r.status != 204 {
				t.Fatalf("setup add: %d %s", r.status, r.body)
			}
			before, applies := f.peers(t), f.dev.Applies()
			req := newPost(t, "/w/add_peer", tc.body, tc.contentType)
			r := f.serve(req)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400 (body %q)", r.status, r.body)
			}
			if got := strings.TrimSuffix(r.body, "\n"); got != tc.want || strings.Contains(got, "\n") {
				t.Errorf("message\n got %q\nwant %q", r.body, tc.want+"\n")
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			if diff := cmp.Diff(before, f.peers(t), cmpOpts); diff != "" || f.dev.Applies() != applies {
				t.Errorf("device changed by a rejected request (-before +after):\n%s", diff)
			}
		})
	}
}

func TestAddPeerAcceptsHostPrefixes(t *testing.T) {
	f := newFixture(t)
	nets := []string{"198.51.100.5/32", "2001:db8::5/128", "198.51.100.0/24", "0.0.0.0/0", "::/0"}
	if r := f.do(t, http.MethodPost, "/w/add_peer", portalForm(keyA, nets...)); r.status != 204 {
		t.Fatalf("add_peer: %d %s", r.status, r.body)
	}
	// Duplicates are dropped, the order is kept.
	if r := f.do(t, http.MethodPost, "/w/add_peer", portalForm(keyB, "198.51.100.6/32", "198.51.100.6/32")); r.status != 204 {
		t.Fatalf("add_peer: %d %s", r.status, r.body)
	}
	var got [][]string
	for _, p := range f.peers(t) {
		got = append(got, renderPeer(p).IPNet)
	}
	want := [][]string{{"198.51.100.6/32"}, nets} // Memory sorts by key bytes: keyB < keyA
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("allowed IPs (-want +got):\n%s", diff)
	}
}

func TestPeerListAndRemoveGolden(t *testing.T) {
	f := newFixture(t)
	for _, add := range []string{
		portalForm(keyA, "198.51.100.9/32", "fd00:6916:e5a0:6999::9/128"),
		portalForm(keyB, "198.51.100.10/32", "fd00:6916:e5a0:6999::a/128"),
	} {
		if r := f.do(t, http.MethodPost, "/w/add_peer", add); r.status != 204 {
			t.Fatalf("add: %d %s", r.status, r.body)
		}
	}
	// keyB handshook 30 s ago (fractional seconds are dropped), keyA never.
	f.dev.SetStats(wirefleet.MustParseKey(keyB), epoch.Add(-30*time.Second+123*time.Millisecond).In(time.FixedZone("CET", 3600)), 19732, 32364)

	r := f.do(t, http.MethodGet, "/w/peer_list?show_all=yes", "")
	checkJSON(t, r)
	golden(t, "peer_list_all.json", r.body)

	r = f.do(t, http.MethodGet, "/w/peer_list", "")
	checkJSON(t, r)
	golden(t, "peer_list_online.json", r.body)

	r = f.do(t, http.MethodPost, "/w/remove_peer", "public_key="+url.QueryEscape(keyB))
	checkJSON(t, r)
	golden(t, "remove_peer.json", r.body)

	r = f.do(t, http.MethodPost, "/w/remove_peer", "public_key="+url.QueryEscape(keyB))
	if r.status != http.StatusNoContent || r.body != "" {
		t.Errorf("second remove: %d %q, want 204 and no body", r.status, r.body)
	}
	r = f.do(t, http.MethodPost, "/w/remove_peer", "public_key="+url.QueryEscape(keyA))
	checkJSON(t, r)
	if !strings.Contains(r.body, `"last_handshake_time":null`) {
		t.Errorf("remove of a peer without handshake: %s, want last_handshake_time null", r.body)
	}
	r = f.do(t, http.MethodGet, "/w/peer_list?show_all=yes", "")
	if r.body != `{"peer_list":[]}`+"\n" {
		t.Errorf("empty peer list: %q, want an empty array", r.body)
	}
}

// checkJSON asserts a 200 with a JSON object body.
func checkJSON(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(r.body), &obj); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
}

func TestShowAllWindow(t *testing.T) {
	keys := map[string]time.Duration{ // handshake age at epoch; -1: never
		keyA: 0,
		keyB: 3 * time.Minute,
		"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=": 3*time.Minute + time.Second,
		"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=": -1,
	}
	tests := []struct {
		name    string
		advance time.Duration
		query   string
		want    []string
	}{
		// Memory lists peers by key bytes: AQAA… < BBBB… < keyB < keyA.
		{"default is no", 0, "", []string{keyB, keyA}},
		{"no", 0, "?show_all=no", []string{keyB, keyA}},
		{"yes", 0, "?show_all=yes", []string{"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=", keyB, keyA}},
		{"one second later", time.Second, "?show_all=no", []string{keyA}},
		{"three minutes later", 3 * time.Minute, "", []string{keyA}},
		{"past the window", 3*time.Minute + time.Second, "", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for k, age := range keys {
				if r := f.do(t, http.MethodPost, "/w/add_peer", portalForm(k, "2001:db8::1/128")); r.status != 204 {
					t.Fatalf("add: %d %s", r.status, r.body)
				}
				if age >= 0 {
					f.dev.SetStats(wirefleet.MustParseKey(k), epoch.Add(-age), 1, 1)
				}
			}
			f.clock.Set(epoch.Add(tc.advance))
			r := f.do(t, http.MethodGet, "/w/peer_list"+tc.query, "")
			checkJSON(t, r)
			var body struct {
				PeerList []peerJSON `json:"peer_list"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, p := range body.PeerList {
				got = append(got, p.PublicKey)
				if p.LastHandshakeTime != nil && !strings.HasSuffix(*p.LastHandshakeTime, "Z") {
					t.Errorf("last_handshake_time %q does not end in Z", *p.LastHandshakeTime)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("peers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderPeerHandshake(t *testing.T) {
	tests := []struct {
		name string
		hs   time.Time
		want *string
	}{
		{"never", time.Time{}, nil},
		{"epoch means never", time.Unix(0, 0), nil},
		{"utc with Z", time.Date(2021, 12, 28, 14, 31, 4, 999, time.FixedZone("CET", 3600)), ptr("2021-12-28T13:31:04Z")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := renderPeer(wgdev.PeerStatus{LastHandshake: tc.hs}).LastHandshakeTime
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRemovePeerBadInput(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"missing", "", "missing public_key"},
		{"invalid", "public_key=abc", `invalid public_key: key "abc" is not valid base64`},
		{"twice", "public_key=" + url.QueryEscape(keyA) + "&public_key=" + url.QueryEscape(keyA), "public_key given 2 times, want exactly one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.do(t, http.MethodPost, "/w/add_peer", portalForm(keyA, "198.51.100.9/32"))
			r := f.do(t, http.MethodPost, "/w/remove_peer", tc.body)
			if r.status != 400 || r.body != tc.want+"\n" {
				t.Errorf("got %d %q, want 400 %q", r.status, r.body, tc.want)
			}
			if len(f.peers(t)) != 1 {
				t.Errorf("peer removed by a rejected request")
			}
		})
	}
}
