package managed

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// TestAllInOneServerPhoneConfig: `wirefleet server` with only test ranges (and a unique
// network name) given creates its network on first run, prints an admin token once, runs a local managed gateway,
// and `wirefleet client new default -name phone` gives a config that works from another
// host (stock wireguard-go and wg), preshared key included.
func TestAllInOneServerPhoneConfig(t *testing.T) {
	testenv.Privileged(t, "wg", "wireguard-go", "ping")
	bin := e2e.Binary(t)
	srv := testenv.NewNetNS(t, "mas")
	cli := testenv.NewNetNS(t, "mac")
	testenv.Link(t, srv, "198.18.111.1/24", cli, "198.18.111.2/24")
	data := t.TempDir()
	// A unique network name: the interface (and its UAPI socket under /var/run/wireguard,
	// shared by all namespaces) is named after it, and tests run concurrently.
	network := testenv.UniqueName("aio")
	server := e2e.Start(t, srv, nil, bin, "server", "-data", data, "-listen", "0.0.0.0:8080", "-default-network", network,
		"-default-ipv4", "198.18.60.1/24", "-default-ipv6", "fd00:60::1/64", "-default-endpoint", "198.18.111.1",
		"-wg-backend", "userspace", "-drift-interval", "2s", "-stats-interval", "1s")
	var admin string
	e2e.Eventually(t, 20*time.Second, func() error {
		m := regexp.MustCompile(`Admin token \(shown once, keep it\): (wft_\S+)`).FindStringSubmatch(server.Output())
		if m == nil {
			return fmt.Errorf("no admin token printed yet")
		}
		admin = m[1]
		return nil
	})
	e2e.Eventually(t, 20*time.Second, func() error {
		_, err := os.Stat("/var/run/wireguard/" + network + ".sock")
		return err
	})

	cliEnv := []string{"WIREFLEET_SERVER=http://127.0.0.1:8080", "WIREFLEET_TOKEN=" + admin}
	run := func(args ...string) string {
		cmd := srv.Command(bin, args...)
		cmd.Env = append(os.Environ(), cliEnv...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("wirefleet %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	conf := run("client", "new", network, "-name", "phone")
	if qr := run("client", "new", network, "-name", "tablet", "-qr"); len(qr) < 200 {
		t.Errorf("QR output is %d bytes", len(qr))
	}
	get := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + key + `\s*=\s*(.+)$`).FindStringSubmatch(conf)
		if m == nil {
			t.Fatalf("config lacks %s:\n%s", key, conf)
		}
		return strings.TrimSpace(m[1])
	}
	var addr4 string
	for _, a := range strings.Split(get("Address"), ",") {
		if a = strings.TrimSpace(a); !strings.Contains(a, ":") {
			addr4 = strings.Split(a, "/")[0]
		}
	}
	if get("Endpoint") != "198.18.111.1:51820" || addr4 == "" {
		t.Fatalf("config endpoint %q address %q:\n%s", get("Endpoint"), addr4, conf)
	}
	setconf := fmt.Sprintf("[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nEndpoint = %s\nAllowedIPs = %s\nPersistentKeepalive = 1\n",
		get("PrivateKey"), get("PublicKey"), get("PresharedKey"), get("Endpoint"), get("AllowedIPs"))
	file := filepath.Join(t.TempDir(), "phone.conf")
	if err := os.WriteFile(file, []byte(setconf), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := testenv.UniqueName("wfph")
	e2e.Start(t, cli, []string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, "wireguard-go", dev)
	e2e.Eventually(t, 10*time.Second, func() error { _, err := os.Stat("/var/run/wireguard/" + dev + ".sock"); return err })
	cli.Exec(t, "wg", "setconf", dev, file)
	cli.Exec(t, "ip", "addr", "add", addr4+"/24", "dev", dev)
	cli.Exec(t, "ip", "link", "set", dev, "up")
	e2e.Eventually(t, 30*time.Second, func() error {
		out, err := cli.Command("ping", "-c", "1", "-W", "1", "198.18.60.1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping through the phone's tunnel: %v: %s", err, out)
		}
		return nil
	})
	if strings.Contains(server.Output(), get("PrivateKey")) {
		t.Error("the client's private key is in the server's output")
	}
}
