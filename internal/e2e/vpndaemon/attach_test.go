package vpndaemon

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// TestAttachSurvivesRestart attaches the gateway to an interface made with the stock tools
// (as wg-quick would): the API manages only peers inside the managed prefixes, never touches
// the interface's key or its other peers, and the peers it added survive a gateway restart.
func TestAttachSurvivesRestart(t *testing.T) {
	testenv.Privileged(t, "wg", "wireguard-go")
	ns := testenv.NewNetNS(t, "gwat")
	dev := testenv.UniqueName("wfat")
	e2e.Start(t, ns, []string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, "wireguard-go", dev)
	e2e.Eventually(t, 10*time.Second, func() error { _, err := os.Stat("/var/run/wireguard/" + dev + ".sock"); return err })
	priv, _ := wirefleet.GeneratePrivateKey()
	keyFile := filepath.Join(t.TempDir(), "a.key")
	if err := os.WriteFile(keyFile, []byte(priv.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	staticPriv, _ := wirefleet.GeneratePrivateKey()
	static := staticPriv.PublicKey().String()
	ns.Exec(t, "wg", "set", dev, "private-key", keyFile, "listen-port", "51820", "peer", static, "allowed-ips", "192.0.2.7/32")
	ns.Exec(t, "ip", "addr", "add", tunA4+"/24", "dev", dev)
	ns.Exec(t, "ip", "link", "set", dev, "up")

	g := newGateway(t, ns, nil, nil, "")
	g.dev = dev
	g.args = []string{"-wg-backend", "attach", "-wg-managed-prefix", "198.51.100.0/24", "-wg-managed-prefix", "fd00:41::/64"}
	g.start()

	pPriv, _ := wirefleet.GeneratePrivateKey()
	p := pPriv.PublicKey().String()
	add := func(key string, nets ...string) (int, string) {
		body := "public_key=" + url.QueryEscape(key)
		for _, n := range nets {
			body += "&ip_net=" + url.QueryEscape(n)
		}
		return g.post("/w/add_peer", body)
	}
	if status, body := add(p, "198.51.100.5/32", "fd00:41::5/128"); status != http.StatusNoContent {
		t.Fatalf("add_peer: %d %s", status, body)
	}
	if status, body := add(p, "192.0.2.9/32"); status != http.StatusBadRequest || !strings.Contains(body, "outside the managed prefixes") {
		t.Errorf("add_peer outside the managed prefixes: %d %q, want 400", status, body)
	}
	if status, body := add(static, "198.51.100.6/32"); status != http.StatusConflict {
		t.Errorf("add_peer of the unmanaged static peer's key: %d %q, want 409", status, body)
	}
	listKeys := func() []string {
		t.Helper()
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
		var keys []string
		for _, e := range list.PeerList {
			keys = append(keys, e.PublicKey+" "+strings.Join(e.IPNet, ","))
		}
		return keys
	}
	want := p + " 198.51.100.5/32,fd00:41::5/128"
	if got := listKeys(); len(got) != 1 || got[0] != want {
		t.Errorf("peer_list %q, want only %q (the static peer is not ours)", got, want)
	}

	if err := g.proc.Stop(10 * time.Second); err != nil {
		t.Fatalf("gateway exit after SIGTERM: %v", err)
	}
	dump := ns.Exec(t, "wg", "show", dev, "dump")
	if !strings.Contains(dump, p) || !strings.Contains(dump, static+"\t(none)\t(none)\t192.0.2.7/32") {
		t.Errorf("after the gateway stopped, wg show dump:\n%s\nwant both the API's peer and the untouched static peer", dump)
	}
	if got := strings.TrimSpace(ns.Exec(t, "wg", "show", dev, "public-key")); got != priv.PublicKey().String() {
		t.Errorf("interface key changed to %s", got)
	}
	g.start()
	if got := listKeys(); len(got) != 1 || got[0] != want {
		t.Errorf("peer_list after restart %q, want %q", got, want)
	}
	if status, _ := g.post("/w/remove_peer", "public_key="+url.QueryEscape(p)); status != http.StatusOK {
		t.Errorf("remove_peer after restart: %d, want 200", status)
	}
	if status, _ := g.post("/w/remove_peer", "public_key="+url.QueryEscape(static)); status != http.StatusNoContent {
		t.Errorf("remove_peer of the unmanaged peer: %d, want 204 (not ours, invisible)", status)
	}
	if dump := ns.Exec(t, "wg", "show", dev, "dump"); strings.Contains(dump, p) || !strings.Contains(dump, static) {
		t.Errorf("wg show dump after removes:\n%s\nwant the static peer only", dump)
	}
}
