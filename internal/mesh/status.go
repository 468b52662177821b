package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is the answer of `wirefleet mesh status -o json`; its shape is a contract.
type Status struct {
	Node  StatusNode   `json:"node"`
	Peers []StatusPeer `json:"peers"`
}

// StatusNode describes this node.
type StatusNode struct {
	Name      string `json:"name"`
	WgIP      string `json:"wg_ip"`
	PublicKey string `json:"public_key"`
	Identity  string `json:"identity"`
}

// StatusPeer is one reachable node.
type StatusPeer struct {
	Name      string   `json:"name"`
	WgIP      string   `json:"wg_ip"`
	Identity  string   `json:"identity"`
	PublicKey string   `json:"public_key"`
	Path      string   `json:"path"`
	Via       *string  `json:"via"`
	Endpoint  string   `json:"endpoint"`
	LastSeenS float64  `json:"last_seen_s"`
	RTTms     *float64 `json:"rtt_ms"`
}

// Status snapshots the node; it also refreshes the per-path node gauge.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	st := Status{Node: StatusNode{Name: n.self.Name, WgIP: n.self.WgIP.String(),
		PublicKey: n.self.WgKey.String(), Identity: idString(n.self.Identity)}, Peers: []StatusPeer{}}
	for dest, r := range n.routes {
		ns := n.nodes[dest]
		if ns == nil {
			continue
		}
		p := StatusPeer{Name: ns.rec.Name, WgIP: dest.String(), Identity: idString(ns.rec.Identity),
			PublicKey: ns.rec.WgKey.String(), Path: ns.path,
			LastSeenS: float64(now.Sub(ns.lastSeen).Milliseconds()) / 1000}
		if r.Via.IsValid() {
			via := r.Via.String()
			p.Path, p.Via = PathRelay, &via
		} else {
			if ns.endpoint.IsValid() {
				p.Endpoint = ns.endpoint.String()
			}
			if ns.rtt > 0 {
				ms := float64(ns.rtt.Microseconds()) / 1000
				p.RTTms = &ms
			}
		}
		st.Peers = append(st.Peers, p)
	}
	slices.SortFunc(st.Peers, func(a, b StatusPeer) int {
		return netip.MustParseAddr(a.WgIP).Compare(netip.MustParseAddr(b.WgIP))
	})
	return st
}

// refreshGauge sets the nodes-by-path gauge. Caller holds mu.
func (n *Node) refreshGauge() {
	counts := map[string]int{PathDirect: 0, PathLAN: 0, PathNAT: 0, PathRelay: 0}
	for dest, r := range n.routes {
		if r.Via.IsValid() {
			counts[PathRelay]++
		} else if ns := n.nodes[dest]; ns != nil {
			counts[ns.path]++
		}
	}
	for p, c := range counts {
		n.metrics.nodes.WithLabelValues(p).Set(float64(c))
	}
}

// Forget releases the TOFU binding of ip and drops what the node knows of it, so another
// identity may claim the address.
func (n *Node) Forget(ctx context.Context, ip netip.Addr) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ok, err := n.bindings.Forget(ip)
	if err != nil {
		return ok, err
	}
	if ns := n.nodes[ip]; ns != nil {
		if ns.static != nil {
			n.nodes[ip] = &nodeState{static: ns.static}
		} else {
			delete(n.nodes, ip)
		}
		n.reroute(ctx)
	}
	n.log.Info("binding forgotten by operator", "wg_ip", ip, "was_bound", ok)
	return ok, nil
}

// SocketPath is the control socket of the node whose state directory is dir.
func SocketPath(dir string) string { return filepath.Join(dir, socketFile) }

// ServeControl serves the control socket (status, forget) until ctx ends.
func (n *Node) ServeControl(ctx context.Context) error {
	p := SocketPath(n.cfg.StateDir)
	_ = os.Remove(p) // a stale socket of a previous run; the identity file shows we own the dir
	l, err := net.Listen("unix", p)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	_ = os.Chmod(p, 0o600)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(n.Status())
	})
	mux.HandleFunc("POST /forget", func(w http.ResponseWriter, r *http.Request) {
		ip, err := netip.ParseAddr(r.URL.Query().Get("wg_ip"))
		if err != nil {
			http.Error(w, "wg_ip is not an IP address", http.StatusBadRequest)
			return
		}
		ok, err := n.Forget(r.Context(), ip)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]bool{"was_bound": ok})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	_ = os.Remove(p)
	return nil
}

// Client talks to a running node over its control socket.
type Client struct{ hc *http.Client }

// NewClient returns a client for the node whose state directory is dir.
func NewClient(dir string) *Client {
	p := SocketPath(dir)
	return &Client{hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p)
		}}}}
}

// ErrNotRunning means no node answers on the control socket.
var ErrNotRunning = errors.New("no mesh node is running with this state directory")

// Status asks the node for its status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mesh/status", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("%w (%v)", ErrNotRunning, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return st, fmt.Errorf("status: %s", strings.TrimSpace(string(b)))
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Forget asks the node to release a binding.
func (c *Client) Forget(ctx context.Context, ip netip.Addr) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://mesh/forget?wg_ip="+ip.String(), nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w (%v)", ErrNotRunning, err)
	}
	defer resp.Body.Close()
	var out struct {
		WasBound bool `json:"was_bound"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return false, fmt.Errorf("forget: %s", strings.TrimSpace(string(b)))
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out.WasBound, err
}

// ForgetOffline edits the state directory of a node that is not running.
func ForgetOffline(dir string, ip netip.Addr) (bool, error) {
	b, err := OpenBindings(dir)
	if err != nil {
		return false, err
	}
	return b.Forget(ip)
}

// WriteTable renders the status for humans.
func WriteTable(w io.Writer, st Status) error {
	fmt.Fprintf(w, "node %s %s key %s\n", st.Node.Name, st.Node.WgIP, st.Node.PublicKey)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tWG IP\tPATH\tVIA\tENDPOINT\tLAST SEEN\tRTT")
	for _, p := range st.Peers {
		via, rtt, ep := "-", "-", p.Endpoint
		if p.Via != nil {
			via = *p.Via
		}
		if p.RTTms != nil {
			rtt = fmt.Sprintf("%.1fms", *p.RTTms)
		}
		if ep == "" {
			ep = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0fs\t%s\n", p.Name, p.WgIP, p.Path, via, ep, p.LastSeenS, rtt)
	}
	return tw.Flush()
}
