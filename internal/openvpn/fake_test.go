package openvpn

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer speaks the management protocol of OpenVPN 2.6 on a real unix socket, one
// client at a time like OpenVPN, with a client list the test controls. It is for unit
// tests and benchmarks; the e2e tests use real OpenVPN.
type fakeServer struct {
	t    testing.TB
	ln   *net.UnixListener
	path string

	// silent: accept and never say anything (a hung process).
	silent bool
	// noise: interleave >LOG and >BYTECOUNT_CLI notifications in every answer, also
	// between the lines of a multi-line answer.
	noise bool

	mu      sync.Mutex // guards clients
	clients []fakeClient
}

type fakeClient struct {
	cn, real, v4, v6 string
	rx, tx           uint64
	since            int64
	id               uint64
}

// Modes of a fakeServer, fixed before it serves.
const (
	fakeSilent = 1 << iota
	fakeNoise
)

func newFakeServer(t testing.TB, dir, name string, mode int) *fakeServer {
	t.Helper()
	path := filepath.Join(dir, name+".sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, path: path, silent: mode&fakeSilent != 0, noise: mode&fakeNoise != 0}
	t.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *fakeServer) setClients(cs ...fakeClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients = cs
}

func (s *fakeServer) serve() {
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if s.silent {
			held = append(held, c) // keep it open, say nothing
			continue
		}
		s.session(c) // one management client at a time, like OpenVPN
	}
}

func (s *fakeServer) session(c net.Conn) {
	defer c.Close()
	w := bufio.NewWriter(c)
	defer w.Flush()
	fmt.Fprint(w, ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n")
	w.Flush()
	r := bufio.NewScanner(c)
	for r.Scan() {
		cmd := r.Text()
		if s.noise {
			fmt.Fprintf(w, ">LOG:1795453724,D,MANAGEMENT: CMD '%s'\r\n", cmd)
		}
		switch {
		case cmd == "status 3":
			s.writeStatus(w)
		case cmd == "version":
			fmt.Fprint(w, "OpenVPN Version: OpenVPN 2.6.14 x86_64-pc-linux-gnu\r\nManagement Version: 5\r\nEND\r\n")
		case strings.HasPrefix(cmd, "kill "):
			cn := unquoteArg(strings.TrimPrefix(cmd, "kill "))
			if n := s.kill(cn); n > 0 {
				fmt.Fprintf(w, "SUCCESS: common name '%s' found, %d client(s) killed\r\n", cn, n)
			} else {
				fmt.Fprintf(w, "ERROR: common name '%s' not found\r\n", cn)
			}
		case cmd == "quit" || cmd == "exit":
			return
		default:
			fmt.Fprint(w, "ERROR: unknown command, enter 'help' for more options\r\n")
		}
		w.Flush()
	}
}

// unquoteArg undoes the quoting of one argument the way OpenVPN's parse_line does for
// the cases killCommand produces.
func unquoteArg(s string) string {
	if !strings.HasPrefix(s, `"`) || !strings.HasSuffix(s, `"`) || len(s) < 2 {
		return s
	}
	var b strings.Builder
	esc := false
	for _, r := range s[1 : len(s)-1] {
		if !esc && r == '\\' {
			esc = true
			continue
		}
		esc = false
		b.WriteRune(r)
	}
	return b.String()
}

func (s *fakeServer) kill(cn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	kept := s.clients[:0]
	for _, c := range s.clients {
		if c.cn == cn {
			n++
			continue
		}
		kept = append(kept, c)
	}
	s.clients = kept
	return n
}

func (s *fakeServer) writeStatus(w *bufio.Writer) {
	s.mu.Lock()
	cs := append([]fakeClient(nil), s.clients...)
	s.mu.Unlock()
	now := time.Unix(1795453726, 0).UTC()
	fmt.Fprint(w, "TITLE\tOpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] [MH/PKTINFO] [AEAD] [DCO]\r\n")
	fmt.Fprintf(w, "TIME\t%s\t%d\r\n", now.Format(time.DateTime), now.Unix())
	fmt.Fprint(w, "HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher\r\n")
	for i, c := range cs {
		since := time.Unix(c.since, 0).UTC()
		fmt.Fprintf(w, "CLIENT_LIST\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\tUNDEF\t%d\t%d\tAES-256-GCM\r\n",
			c.cn, c.real, c.v4, c.v6, c.rx, c.tx, since.Format(time.DateTime), c.since, c.id, c.id)
		if s.noise && i == 0 {
			fmt.Fprintf(w, ">BYTECOUNT_CLI:%d,%d,%d\r\n", c.id, c.rx, c.tx)
		}
	}
	fmt.Fprint(w, "HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name\tReal Address\tLast Ref\tLast Ref (time_t)\r\n")
	for _, c := range cs {
		for _, a := range []string{c.v6, c.v4} {
			if a != "" {
				fmt.Fprintf(w, "ROUTING_TABLE\t%s\t%s\t%s\t%s\t%d\r\n", a, c.cn, c.real, now.Format(time.DateTime), now.Unix())
			}
		}
	}
	fmt.Fprint(w, "GLOBAL_STATS\tMax bcast/mcast queue length\t1\r\nGLOBAL_STATS\tdco_enabled\t0\r\nEND\r\n")
}

// manyClients makes n clients with base64-looking CNs and addresses in the test ranges.
func manyClients(prefix string, n int) []fakeClient {
	cs := make([]fakeClient, n)
	for i := range cs {
		cs[i] = fakeClient{
			cn:   fmt.Sprintf("%s%03d+/Bx8mDComLFPKgCrxPvvq0Lsq2s=", prefix, i),
			real: fmt.Sprintf("192.0.2.%d:%d", 1+i%250, 40000+i),
			v4:   fmt.Sprintf("198.51.100.%d", 2+i%250),
			v6:   fmt.Sprintf("2001:db8:1::%x", 0x1000+i),
			rx:   uint64(1000 * i), tx: uint64(2000 * i),
			since: 1795453665, id: uint64(i),
		}
	}
	return cs
}
