package api

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/wgquick"
)

func TestNetworkCRUD(t *testing.T) {
	e := newEnv(t, Config{})
	var n wirefleet.Network
	e.do("POST", "/api/v1/networks", e.admin, wire.NetworkCreate{
		Name: "office", IPv4: "198.51.100.1/24", IPv6: "2001:db8:1::1/64", Endpoint: "vpn.example.org",
		DNS: []string{"198.51.100.1"}, Routes: []string{"0.0.0.0/0", "::/0"},
	}).want(t, 201, &n)
	if n.Name != "office" || n.ListenPort != 51820 || n.MTU != 1420 || n.PublicKey.IsZero() {
		t.Errorf("created network %+v lacks defaults or key", n)
	}
	stored, err := e.svc.GetNetwork(context.Background(), "office")
	if err != nil {
		t.Fatal(err)
	}
	priv := stored.PrivateKey.Reveal().String()

	var got wirefleet.Network
	r := e.do("GET", "/api/v1/networks/office", e.admin, nil)
	r.want(t, 200, &got)
	assertNoSecret(t, r.body, priv)
	if got.PublicKey != n.PublicKey {
		t.Errorf("GET public key %s, want %s", got.PublicKey, n.PublicKey)
	}

	var list wire.NetworkList
	r = e.do("GET", "/api/v1/networks", e.admin, nil)
	r.want(t, 200, &list)
	assertNoSecret(t, r.body, priv)
	if len(list.Items) != 1 || list.Items[0].Name != "office" {
		t.Errorf("list = %+v", list.Items)
	}

	mtu := 1380
	var upd wirefleet.Network
	e.do("PATCH", "/api/v1/networks/office", e.admin, wire.NetworkUpdate{MTU: &mtu}).want(t, 200, &upd)
	if upd.MTU != 1380 || upd.Endpoint != "vpn.example.org" {
		t.Errorf("after PATCH: mtu %d endpoint %q", upd.MTU, upd.Endpoint)
	}

	p := e.do("POST", "/api/v1/networks", e.admin, wire.NetworkCreate{Name: "office", IPv4: "198.51.100.1/24"})
	if p.status != 409 || p.problem(t).Kind != "conflict" {
		t.Errorf("duplicate create: %d %s", p.status, p.body)
	}
	e.do("DELETE", "/api/v1/networks/office", e.admin, nil).want(t, 204, nil)
	if pr := e.do("GET", "/api/v1/networks/office", e.admin, nil); pr.status != 404 || pr.problem(t).Kind != "not_found" {
		t.Errorf("after delete: %d %s", pr.status, pr.body)
	}
}

func assertNoSecret(t *testing.T, body []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && bytes.Contains(body, []byte(s)) {
			t.Fatalf("response leaks a secret: %s", body)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name, method, path, body, ctype string
		want                            string // substring of detail
	}{
		{"unknown field", "POST", "/api/v1/networks", `{"name":"a","ipv4":"198.51.100.1/24","colour":"red"}`, "", `unknown field "colour"`},
		{"trailing data", "POST", "/api/v1/networks", `{"name":"a","ipv4":"198.51.100.1/24"} {}`, "", "data after the JSON object"},
		{"empty body", "POST", "/api/v1/networks", ``, "", "body is empty"},
		{"syntax", "POST", "/api/v1/networks", `{"name":`, "", "ends in the middle"},
		{"type", "POST", "/api/v1/networks", `{"name":5}`, "", `field "name"`},
		{"content type", "POST", "/api/v1/networks", `{}`, "text/plain", "Content-Type"},
		{"too large", "POST", "/api/v1/networks", `{"name":"` + strings.Repeat("a", maxBody) + `"}`, "", "larger than"},
		{"bad cidr", "POST", "/api/v1/networks", `{"name":"a","ipv4":"198.51.100.1"}`, "", `ipv4 "198.51.100.1"`},
		{"bad route", "POST", "/api/v1/networks", `{"name":"a","ipv4":"198.51.100.1/24","routes":["198.51.100.1/24"]}`, "", "host bits"},
		{"bad name", "POST", "/api/v1/networks", `{"name":"Bad Name","ipv4":"198.51.100.1/24"}`, "", "network name"},
		{"bad key", "POST", "/api/v1/networks/x/peers", `{"public_key":"nope"}`, "", `key "nope"`},
		{"bad path key", "GET", "/api/v1/networks/x/peers/abc", ``, "", "peer key in the path"},
		{"bad limit", "GET", "/api/v1/networks/x/peers?limit=-1", ``, "", "limit"},
		{"bad bool", "GET", "/api/v1/networks/x/peers?enabled=maybe", ``, "", "enabled"},
		{"bad cursor", "GET", "/api/v1/networks/x/peers?cursor=!!", ``, "", "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body *strings.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, e.http.URL+tt.path, nil)
			if body != nil {
				req, _ = http.NewRequest(tt.method, e.http.URL+tt.path, body)
			}
			req.Header.Set("Authorization", "Bearer "+e.admin)
			ct := tt.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			r := e.send(req)
			p := r.problem(t)
			if r.status != 400 || p.Kind != "invalid" || !strings.Contains(p.Detail, tt.want) {
				t.Errorf("got %d %+v, want 400 invalid containing %q", r.status, p, tt.want)
			}
		})
	}
}

func TestUnknownRoute(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.do("GET", "/api/v1/nothing", e.admin, nil)
	if r.status != 404 || r.problem(t).Kind != "not_found" {
		t.Errorf("got %d %s", r.status, r.body)
	}
	r = e.do("PUT", "/api/v1/networks", e.admin, nil)
	if r.status != 405 {
		t.Errorf("PUT /api/v1/networks: %d, want 405", r.status)
	}
}

func TestPeers(t *testing.T) {
	e := newEnv(t, Config{})
	n := e.network()
	base := "/api/v1/networks/" + n.Name + "/peers"
	priv, _ := wirefleet.GeneratePrivateKey()
	psk, _ := wirefleet.GeneratePresharedKey()
	var p wire.Peer
	r := e.do("POST", base, e.admin, wire.PeerCreate{PublicKey: priv.PublicKey(), Name: "laptop", PresharedKey: &psk})
	r.want(t, 201, &p)
	assertNoSecret(t, r.body, psk.String())
	if !p.HasPresharedKey || !p.Enabled || p.ExpiresAt != nil || len(p.Addresses) != 2 {
		t.Errorf("created peer %+v", p)
	}
	if got := p.Addresses[0].String(); got != "198.51.100.2" {
		t.Errorf("first allocated address %s, want 198.51.100.2", got)
	}
	// Both key forms address the peer.
	var g wire.Peer
	e.do("GET", base+"/"+url.PathEscape(p.PublicKey.String()), e.admin, nil).want(t, 200, &g)
	e.do("GET", base+"/"+urlKey(p.PublicKey), e.admin, nil).want(t, 200, &g)
	if g.PublicKey != p.PublicKey {
		t.Errorf("GET returned %s", g.PublicKey)
	}
	path := base + "/" + urlKey(p.PublicKey)

	e.do("POST", path+"/disable", e.admin, nil).want(t, 200, &g)
	if g.Enabled {
		t.Error("disable left the peer enabled")
	}
	e.do("POST", path+"/enable", e.admin, nil).want(t, 200, &g)
	if !g.Enabled {
		t.Error("enable left the peer disabled")
	}
	exp := e.clock.Now().Add(time.Hour)
	e.do("PATCH", path, e.admin, `{"expires_at":"`+exp.Format(time.RFC3339)+`","name":"laptop2"}`).want(t, 200, &g)
	if g.ExpiresAt == nil || !g.ExpiresAt.Equal(exp) || g.Name != "laptop2" || g.Expired {
		t.Errorf("after PATCH expiry: %+v", g)
	}
	e.do("PATCH", path, e.admin, `{"expires_at":"`+e.clock.Now().Add(-time.Minute).Format(time.RFC3339)+`"}`).want(t, 200, &g)
	if !g.Expired || g.Active() {
		t.Errorf("a past expiry did not mark the peer expired: %+v", g)
	}
	e.do("PATCH", path, e.admin, `{"expires_at":null}`).want(t, 200, &g)
	if g.ExpiresAt != nil || g.Expired {
		t.Errorf("null expiry did not clear it: %+v", g)
	}
	// Static address conflict is a 409.
	priv2, _ := wirefleet.GeneratePrivateKey()
	r = e.do("POST", base, e.admin, wire.PeerCreate{PublicKey: priv2.PublicKey(), Addresses: []string{"198.51.100.2"}})
	if r.status != 409 {
		t.Errorf("static address conflict: %d %s", r.status, r.body)
	}
	e.do("DELETE", path, e.admin, nil).want(t, 204, nil)
	e.do("GET", path, e.admin, nil).want(t, 404, nil)
	e.do("DELETE", path, e.admin, nil).want(t, 404, nil)
}

func TestPeerListPagination(t *testing.T) {
	e := newEnv(t, Config{})
	n := e.network()
	var want []wirefleet.Key
	in := control.ImportInput{Network: control.NetworkInput{Name: "big", IPv4: n.IPv4}}
	for i := range 250 {
		k, _ := wirefleet.GeneratePrivateKey()
		pin := control.PeerInput{PublicKey: k.PublicKey(), Name: "p" + itoa(i), Disabled: i%5 == 0}
		in.Peers = append(in.Peers, pin)
	}
	if _, err := e.svc.ImportNetwork(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	for _, p := range in.Peers {
		want = append(want, p.PublicKey)
	}
	var got []wirefleet.Key
	cursor, pages := "", 0
	for {
		var page wire.PeerList
		e.do("GET", "/api/v1/networks/big/peers?limit=100&cursor="+cursor, e.admin, nil).want(t, 200, &page)
		pages++
		for _, p := range page.Items {
			got = append(got, p.PublicKey)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if pages != 3 || len(got) != 250 {
		t.Fatalf("%d pages with %d peers, want 3 pages with 250", pages, len(got))
	}
	seen := map[wirefleet.Key]bool{}
	for i, k := range got {
		if seen[k] {
			t.Fatalf("peer %s listed twice", k)
		}
		seen[k] = true
		if i > 0 && bytes.Compare(got[i-1][:], k[:]) > 0 && got[i-1].String() > k.String() {
			t.Fatalf("not ordered at %d", i)
		}
	}
	for _, k := range want {
		if !seen[k] {
			t.Fatalf("peer %s missing", k)
		}
	}
	var disabled wire.PeerList
	e.do("GET", "/api/v1/networks/big/peers?enabled=false&limit=1000", e.admin, nil).want(t, 200, &disabled)
	if len(disabled.Items) != 50 {
		t.Errorf("enabled=false: %d peers, want 50", len(disabled.Items))
	}
	var named wire.PeerList
	e.do("GET", "/api/v1/networks/big/peers?name_prefix=p24", e.admin, nil).want(t, 200, &named)
	if len(named.Items) != 11 { // p24, p240..p249
		t.Errorf("name_prefix=p24: %d peers, want 11", len(named.Items))
	}
}

func TestClientConfig(t *testing.T) {
	e := newEnv(t, Config{})
	n := e.network()
	path := "/api/v1/networks/" + n.Name + "/clients"
	var c wire.Client
	r := e.do("POST", path, e.admin, wire.ClientCreate{Name: "phone"})
	r.want(t, 201, &c)
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", r.header.Get("Cache-Control"))
	}
	cfg, err := wgquick.Parse(strings.NewReader(c.Config))
	if err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, c.Config)
	}
	if cfg.Interface.PrivateKey.PublicKey() != c.Peer.PublicKey {
		t.Error("the config's private key does not belong to the stored peer")
	}
	if len(cfg.Peers) != 1 || cfg.Peers[0].PublicKey != n.PublicKey || cfg.Peers[0].Endpoint != "vpn.example.org:51820" || cfg.Peers[0].PresharedKey.IsZero() {
		t.Errorf("config peer section %+v", cfg.Peers)
	}
	if diff := cmp.Diff(c.Peer.AllowedIPs(), cfg.Interface.Addresses, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("config addresses differ from the peer's: %s", diff)
	}
	// The private key is not stored anywhere the API can show.
	r = e.do("GET", "/api/v1/networks/"+n.Name+"/peers/"+urlKey(c.Peer.PublicKey), e.admin, nil)
	r.want(t, 200, nil)
	assertNoSecret(t, r.body, cfg.Interface.PrivateKey.String(), cfg.Peers[0].PresharedKey.String())

	// text/plain by Accept, PNG by ?format=png and by Accept.
	req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(`{"name":"conf"}`))
	req.Header.Set("Authorization", "Bearer "+e.admin)
	req.Header.Set("Accept", "text/plain")
	r = e.send(req)
	r.want(t, 201, nil)
	if _, err := wgquick.Parse(bytes.NewReader(r.body)); err != nil || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("text/plain answer: %v, %q", err, r.header.Get("Content-Type"))
	}
	for _, f := range []func(*http.Request){
		func(r *http.Request) { r.URL.RawQuery = "format=png" },
		func(r *http.Request) { r.Header.Set("Accept", "image/png") },
	} {
		req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(`{"name":"qr","preshared_key":false}`))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		f(req)
		r := e.send(req)
		r.want(t, 201, nil)
		if r.header.Get("Content-Type") != "image/png" {
			t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
		}
		if _, err := png.Decode(bytes.NewReader(r.body)); err != nil {
			t.Errorf("not a PNG: %v", err)
		}
	}
	e.do("POST", path+"?format=gif", e.admin, wire.ClientCreate{Name: "x"}).want(t, 400, nil)
	e.do("POST", "/api/v1/networks/nonet/clients", e.admin, wire.ClientCreate{Name: "x"}).want(t, 404, nil)
}

func TestTokens(t *testing.T) {
	e := newEnv(t, Config{})
	var created wire.TokenCreated
	r := e.do("POST", "/api/v1/tokens", e.admin, wire.TokenCreate{Name: "ci", Roles: []wirefleet.Role{wirefleet.RoleViewer}})
	r.want(t, 201, &created)
	if !strings.HasPrefix(created.Secret, wirefleet.TokenSecretPrefix) {
		t.Fatalf("secret %q", created.Secret)
	}
	e.do("GET", "/api/v1/networks", created.Secret, nil).want(t, 200, nil)
	var list wire.TokenList
	r = e.do("GET", "/api/v1/tokens", e.admin, nil)
	r.want(t, 200, &list)
	stored, err := e.svc.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range stored {
		assertNoSecret(t, r.body, tok.Hash.String())
	}
	assertNoSecret(t, r.body, created.Secret, e.admin)
	if len(list.Items) != 2 {
		t.Errorf("%d tokens listed, want 2", len(list.Items))
	}
	e.do("DELETE", "/api/v1/tokens/"+created.Token.ID, e.admin, nil).want(t, 204, nil)
	r = e.do("GET", "/api/v1/networks", created.Secret, nil)
	if r.status != 401 || r.problem(t).Kind != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("revoked token: %d %s", r.status, r.body)
	}
	e.do("POST", "/api/v1/tokens", e.admin, wire.TokenCreate{Roles: []wirefleet.Role{"root"}}).want(t, 400, nil)
	e.do("DELETE", "/api/v1/tokens/nosuchtoken", e.admin, nil).want(t, 404, nil)
}

func TestScopedToken(t *testing.T) {
	e := newEnv(t, Config{})
	a, b := e.network(), e.network()
	scoped := e.token(control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleOperator}, Networks: []string{a.Name}})
	var list wire.NetworkList
	e.do("GET", "/api/v1/networks", scoped, nil).want(t, 200, &list)
	if len(list.Items) != 1 || list.Items[0].Name != a.Name {
		t.Errorf("scoped list: %+v", list.Items)
	}
	e.do("GET", "/api/v1/networks/"+a.Name, scoped, nil).want(t, 200, nil)
	e.do("GET", "/api/v1/networks/"+b.Name, scoped, nil).want(t, 403, nil)
	e.do("GET", "/api/v1/networks/"+b.Name+"/peers", scoped, nil).want(t, 403, nil)
	e.do("POST", "/api/v1/networks/"+b.Name+"/clients", scoped, wire.ClientCreate{Name: "x"}).want(t, 403, nil)
	e.do("POST", "/api/v1/networks/"+a.Name+"/clients", scoped, wire.ClientCreate{Name: "x"}).want(t, 201, nil)
	e.do("POST", "/api/v1/networks", scoped, wire.NetworkCreate{Name: "other", IPv4: "203.0.113.1/24"}).want(t, 403, nil)
	scopedAdmin := e.token(control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}, Networks: []string{a.Name}})
	e.do("POST", "/api/v1/tokens", scopedAdmin, wire.TokenCreate{Roles: []wirefleet.Role{wirefleet.RoleAdmin}}).want(t, 403, nil)
	e.do("GET", "/api/v1/tokens", scopedAdmin, nil).want(t, 403, nil)
}

func TestImport(t *testing.T) {
	e := newEnv(t, Config{})
	conf := `[Interface]
Address = 198.51.100.1/24, 2001:db8:7::1/64
ListenPort = 51999
PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
PostUp = true

[Peer]
# Name = laptop
PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=
AllowedIPs = 198.51.100.2/32, 2001:db8:7::2/128

[Peer]
PublicKey = TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=
AllowedIPs = 198.51.100.3/32
`
	var out wire.NetworkImported
	e.do("POST", "/api/v1/networks/import", e.admin, wire.NetworkImport{Name: "estate", Config: conf, Endpoint: "vpn.example.org"}).want(t, 201, &out)
	wantPub := wirefleet.MustParseKey("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").PublicKey()
	if out.Peers != 2 || out.Network.PublicKey != wantPub || out.Network.ListenPort != 51999 || out.Network.IPv6.String() != "2001:db8:7::1/64" {
		t.Errorf("imported %+v", out)
	}
	if len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], "line 5: [Interface] PostUp is not imported") {
		t.Errorf("warnings %q, want one about PostUp on line 5", out.Warnings)
	}
	var p wire.Peer
	e.do("GET", "/api/v1/networks/estate/peers/"+urlKey(wirefleet.MustParseKey("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=")), e.admin, nil).want(t, 200, &p)
	if p.Name != "laptop" || !p.HasPresharedKey || len(p.Addresses) != 2 {
		t.Errorf("imported peer %+v", p)
	}
	// A second import of the same name conflicts and changes nothing.
	e.do("POST", "/api/v1/networks/import", e.admin, wire.NetworkImport{Name: "estate", Config: conf}).want(t, 409, nil)
	// A broken file names the line.
	r := e.do("POST", "/api/v1/networks/import", e.admin, wire.NetworkImport{Name: "broken", Config: "[Interface]\nAddress = nope\n"})
	if r.status != 400 || !strings.Contains(r.problem(t).Detail, "line 2") {
		t.Errorf("broken import: %d %s", r.status, r.body)
	}
	// Conflicting addresses roll the whole import back.
	dup := "[Interface]\nAddress = 198.51.100.1/24\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs = 198.51.100.2/32\n[Peer]\nPublicKey = TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\nAllowedIPs = 198.51.100.2/32\n"
	e.do("POST", "/api/v1/networks/import", e.admin, wire.NetworkImport{Name: "dup", Config: dup}).want(t, 409, nil)
	e.do("GET", "/api/v1/networks/dup", e.admin, nil).want(t, 404, nil)
}

func TestHealth(t *testing.T) {
	e := newEnv(t, Config{})
	e.do("GET", "/healthz", "", nil).want(t, 200, nil)
	e.do("GET", "/readyz", "wft_wrong_token", nil).want(t, 200, nil)
	bad := newEnv(t, Config{Ready: func(context.Context) error { return context.DeadlineExceeded }})
	if r := bad.do("GET", "/readyz", "", nil); r.status != 503 || r.problem(t).Kind != "unavailable" {
		t.Errorf("readyz when not ready: %d %s", r.status, r.body)
	}
}

// TestAuthCache: revocation through the API is immediate; a change that bypasses this
// server (here: the service directly) is picked up within authCacheTTL; expiry is checked on
// every request, cached or not.
func TestAuthCache(t *testing.T) {
	e := newEnv(t, Config{})
	in := control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleViewer}}
	viaAPI, bypass := e.token(in), e.token(in)
	exp := e.clock.Now().Add(500 * time.Millisecond)
	in.ExpiresAt = &exp
	expiring := e.token(in)
	for _, s := range []string{viaAPI, bypass, expiring} {
		e.do("GET", "/api/v1/networks", s, nil).want(t, 200, nil) // now cached
	}
	id, _ := wirefleet.TokenIDFromSecret(viaAPI)
	e.do("DELETE", "/api/v1/tokens/"+id, e.admin, nil).want(t, 204, nil)
	e.do("GET", "/api/v1/networks", viaAPI, nil).want(t, 401, nil)

	id, _ = wirefleet.TokenIDFromSecret(bypass)
	e.do("GET", "/api/v1/networks", bypass, nil).want(t, 200, nil) // re-cache after the invalidation
	if err := e.svc.RevokeToken(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(600 * time.Millisecond)
	e.do("GET", "/api/v1/networks", expiring, nil).want(t, 401, nil)
	e.clock.Advance(authCacheTTL)
	e.do("GET", "/api/v1/networks", bypass, nil).want(t, 401, nil)
}
