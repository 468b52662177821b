package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mgmtServer is a minimal OpenVPN management interface on a real unix socket: the greeting,
// "status 3" with fixed clients, and "kill CN". hung: accept and never answer.
type mgmtServer struct {
	mu     sync.Mutex // guards killed
	killed []string
}

func serveMgmt(t *testing.T, path string, hung bool, status string) *mgmtServer {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &mgmtServer{}
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if hung {
				held = append(held, c)
				continue
			}
			s.session(c, status)
		}
	}()
	return s
}

func (s *mgmtServer) session(c net.Conn, status string) {
	defer c.Close()
	fmt.Fprint(c, ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n")
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		cmd := sc.Text()
		switch {
		case cmd == "status 3":
			io.WriteString(c, strings.ReplaceAll(status, "\n", "\r\n")+"END\r\n")
		case strings.HasPrefix(cmd, "kill "):
			cn := strings.Trim(strings.TrimPrefix(cmd, "kill "), `"`)
			s.mu.Lock()
			s.killed = append(s.killed, cn)
			s.mu.Unlock()
			fmt.Fprintf(c, "SUCCESS: common name '%s' found, 1 client(s) killed\r\n", cn)
		case cmd == "quit" || cmd == "exit":
			return
		default:
			io.WriteString(c, "ERROR: unknown command, enter 'help' for more options\r\n")
		}
	}
}

const mgmtStatus = "TITLE\tOpenVPN 2.6.14 x86_64-pc-linux-gnu\n" +
	"TIME\t2026-11-23 17:10:00\t1795453800\n" +
	"HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher\n" +
	"CLIENT_LIST\tUNDEF\t192.0.2.9:40001\t\t\t412\t0\t2026-11-23 17:09:59\t1795453799\tUNDEF\t7\t7\tNone\n" +
	"CLIENT_LIST\tYrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=\t192.0.2.3:40002\t198.51.100.3\t2001:db8:1::3\t1000\t2000\t2026-11-23 17:00:00\t1795453200\tUNDEF\t3\t3\tAES-256-GCM\n" +
	"CLIENT_LIST\tonly-v4\t192.0.2.4:40003\t198.51.100.4\t\t5\t6\t2026-11-23 17:00:00\t1795453200\tUNDEF\t4\t4\tAES-256-GCM\n"

// TestOpenVPNBridge runs the gateway with -openvpn-socket-dir holding one answering and
// one hung management socket: the answers come from the first within the 2 s budget.
func TestOpenVPNBridge(t *testing.T) {
	dir := t.TempDir()
	good := serveMgmt(t, filepath.Join(dir, "server-udp.sock"), false, mgmtStatus)
	serveMgmt(t, filepath.Join(dir, "server-tcp.sock"), true, "")
	addr, _, _ := startGateway(t, func(c *Config) { c.OpenVPNSocketDir = dir })
	base := "http://" + addr

	get := func(path string) string {
		t.Helper()
		start := time.Now()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if took := time.Since(start); took > 3500*time.Millisecond {
			t.Errorf("%s took %v with a hung OpenVPN process, want at most about 2 s", path, took)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return strings.TrimSpace(string(b))
	}
	want := `{"connection_list":[{"common_name":"YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=","ip_four":"198.51.100.3","ip_six":"2001:db8:1::3"}]}`
	if got := get("/o/connection_list"); got != want {
		t.Errorf("connection_list\n got %s\nwant %s", got, want)
	}
	if got := get("/i/node?include_client_peer_count=yes"); !strings.Contains(got, `"o_client_count":2`) {
		t.Errorf("/i/node: %s, want o_client_count 2 (UNDEF left out)", got)
	}
	cn := "DDoG0rDvZ1YufRdDHk37MdgOX+lBgKoBzgOQKJ5dzy4="
	resp, err := http.PostForm(base+"/o/disconnect_client", url.Values{"common_name": {cn}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("disconnect_client: %d, want 204", resp.StatusCode)
	}
	good.mu.Lock()
	defer good.mu.Unlock()
	if len(good.killed) != 1 || good.killed[0] != cn {
		t.Errorf("kill commands %q, want [%s]", good.killed, cn)
	}
}
