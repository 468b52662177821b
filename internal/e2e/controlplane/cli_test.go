package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/wgquick"
)

// cli runs the wirefleet binary and returns stdout, stderr and the exit code.
func cli(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestCLIQuickStart is the README quick start: bootstrap token, network, client config;
// plus the exit codes scripts rely on and an import of a 20,000-peer estate.
func TestCLIQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test; runs in the full pass")
	}
	bin := e2e.Binary(t)
	dataDir := t.TempDir()
	secret := bootstrapToken(t, bin, dataDir)
	_, url := startServer(t, bin, dataDir)
	env := []string{"WIREFLEET_SERVER=" + url, "WIREFLEET_TOKEN=" + secret}

	// A second offline writer is refused while the server runs.
	if _, stderr, code := cli(t, bin, nil, "token", "create", "-data", dataDir, "-role", "admin"); code != 1 || !strings.Contains(stderr, "in use") {
		t.Errorf("offline token create next to a running server: exit %d, %q", code, stderr)
	}
	if _, stderr, code := cli(t, bin, env, "network", "create", "office", "-ipv4", "198.51.100.1/24", "-endpoint", "vpn.example.org", "-dns", "198.51.100.1"); code != 0 {
		t.Fatalf("network create: exit %d: %s", code, stderr)
	}
	conf, stderr, code := cli(t, bin, env, "client", "new", "office", "--name", "laptop")
	if code != 0 {
		t.Fatalf("client new: exit %d: %s", code, stderr)
	}
	cfg, err := wgquick.Parse(strings.NewReader(conf))
	if err != nil {
		t.Fatalf("client config does not parse: %v\n%s", err, conf)
	}
	if got := cfg.Peers[0].Endpoint; got != "vpn.example.org:51820" {
		t.Errorf("endpoint %q", got)
	}
	list, _, _ := cli(t, bin, env, "peer", "list", "office")
	if !strings.Contains(list, cfg.Interface.PrivateKey.PublicKey().String()) || !strings.Contains(list, "laptop") {
		t.Errorf("peer list lacks the new client:\n%s", list)
	}
	qr, _, code := cli(t, bin, env, "client", "new", "office", "-name", "phone", "-qr")
	if code != 0 || !strings.Contains(qr, "█") {
		t.Errorf("client new -qr: exit %d\n%s", code, qr)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"network", "show", "nosuch"}, 1, `network "nosuch"`},
		{[]string{"network", "show"}, 2, "takes 1 argument"},
		{[]string{"network", "frobnicate"}, 2, "unknown subcommand"},
		{[]string{"peer", "add", "office", "-key", "nope"}, 2, "-key"},
		{[]string{"network", "list", "-o", "yaml"}, 2, "-o"},
		{[]string{"network", "list", "-token", "wft_abcd_wrong"}, 1, "invalid"},
	} {
		_, stderr, code := cli(t, bin, env, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
		if tc.code == 1 && len(lines) != 1 {
			t.Errorf("%v: API errors should be one line, got %q", tc.args, stderr)
		}
	}

	// Import an estate: 20,000 peers with PSKs, names and dual-stack addresses.
	const n = 20000
	var b strings.Builder
	b.WriteString("[Interface]\nAddress = 198.18.0.1/15, 2001:db8:e::1/64\nListenPort = 51820\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nPostUp = iptables -A FORWARD -i %i -j ACCEPT\n")
	psk := wirefleet.MustParseKey("FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=")
	for i := range n {
		k, _ := wirefleet.GeneratePrivateKey()
		a := i + 2
		fmt.Fprintf(&b, "\n[Peer]\n# Name = client%d\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = 198.18.%d.%d/32, 2001:db8:e::%x/128\n", i, k.PublicKey(), psk, a>>8, a&255, a)
	}
	file := filepath.Join(t.TempDir(), "wg0.conf")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, stderr, code := cli(t, bin, env, "network", "import", file)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	t.Logf("import of %d peers: %v (%s)", n, time.Since(start), strings.TrimSpace(out))
	if !strings.Contains(out, fmt.Sprintf("imported network wg0 with %d peers", n)) {
		t.Errorf("import output %q", out)
	}
	if !strings.Contains(stderr, "warning: line 5: [Interface] PostUp is not imported") {
		t.Errorf("import did not warn about PostUp: %q", stderr)
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("progress bar drawn on a non-terminal: %q", stderr)
	}
	show, _, code := cli(t, bin, env, "network", "show", "wg0", "-o", "json")
	if code != 0 || !strings.Contains(show, wirefleet.MustParseKey("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").PublicKey().String()) {
		t.Errorf("imported network keeps its key pair: %s", show)
	}
}
