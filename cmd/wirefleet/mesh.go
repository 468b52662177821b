package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"text/template"

	"github.com/wirefleet/wirefleet/internal/mesh"
)

func init() {
	register(command{name: "mesh", summary: "run a self-organising mesh node (wg_netmanager mode); status, forget, install", run: runMesh})
}

func runMesh(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return runMeshStatus(ctx, args[1:], stdout, stderr)
		case "forget":
			return runMeshForget(ctx, args[1:], stdout, stderr)
		case "install":
			return runMeshInstall(args[1:], stdout, stderr)
		}
	}
	fs := newFlagSet("mesh", "-c network.yaml [-p peer.yaml] [flags] | status | forget WGIP | install", stderr)
	network := fs.String("c", envDefault("WIREFLEET_MESH_CONFIG", ""), "network file (wg_netmanager's network.yaml) [WIREFLEET_MESH_CONFIG]")
	peerFile := fs.String("p", envDefault("WIREFLEET_MESH_PEER", ""), "node file (wg_netmanager's peer.yaml) [WIREFLEET_MESH_PEER]")
	iface := fs.String("i", "", "WireGuard interface name (default "+mesh.DefaultInterface+" or peer.yaml's wgInterface)")
	wgip := fs.String("a", "", "this node's wg IP (overrides peer.yaml's wgIp)")
	name := fs.String("n", "", "this node's name (default peer.yaml's name, else the host name)")
	existing := fs.Bool("e", false, "use an existing WireGuard interface (attach: only peers inside the subnet are touched)")
	wgPort := fs.Int("w", 0, "WireGuard port (default 50000 + last octet of the wg IP, or the static peer entry's)")
	adminPort := fs.Int("u", 0, "admin UDP port (default 50500 + last octet of the wg IP, or the static peer entry's)")
	stateDir := fs.String("state-dir", envDefault("WIREFLEET_MESH_STATE_DIR", mesh.DefaultStateDir), "state directory: identity, TOFU bindings, control socket [WIREFLEET_MESH_STATE_DIR]")
	metricsListen := fs.String("metrics-listen", envDefault("WIREFLEET_MESH_METRICS_LISTEN", ""), "serve Prometheus metrics on this address, e.g. 127.0.0.1:9586 [WIREFLEET_MESH_METRICS_LISTEN]")
	backend := fs.String("backend", envDefault("WIREFLEET_MESH_BACKEND", "auto"), "WireGuard backend: auto, kernel or userspace (-e always attaches) [WIREFLEET_MESH_BACKEND]")
	verbose := fs.Bool("v", false, "debug logging")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("mesh: unexpected argument %q (subcommands: status, forget, install)", fs.Arg(0))
	}
	if *network == "" {
		return usageError("mesh: -c network.yaml is required")
	}
	switch *backend {
	case "auto", "kernel", "userspace":
	default:
		return usageError("mesh: -backend %q: want auto, kernel or userspace", *backend)
	}
	cfg, err := mesh.Load(*network, *peerFile, mesh.Overrides{Interface: *iface, WgIP: *wgip, Name: *name,
		Existing: *existing, WgPort: *wgPort, AdminPort: *adminPort})
	if err != nil {
		return err
	}
	cfg.StateDir, cfg.MetricsListen, cfg.Backend = *stateDir, *metricsListen, *backend
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return mesh.Run(ctx, cfg, openMeshDevice(cfg.Backend, log), log)
}

func runMeshStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mesh status", "[--state-dir DIR] [-o table|json]", stderr)
	stateDir := fs.String("state-dir", envDefault("WIREFLEET_MESH_STATE_DIR", mesh.DefaultStateDir), "state directory of the running node [WIREFLEET_MESH_STATE_DIR]")
	out := fs.String("o", "table", "output: table or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out != "table" && *out != "json" {
		return usageError("mesh status: -o %q: want table or json", *out)
	}
	st, err := mesh.NewClient(*stateDir).Status(ctx)
	if err != nil {
		return fmt.Errorf("mesh status: %w (is 'wirefleet mesh --state-dir %s' running?)", err, *stateDir)
	}
	if *out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return mesh.WriteTable(stdout, st)
}

func runMeshForget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mesh forget", "[--state-dir DIR] WGIP", stderr)
	stateDir := fs.String("state-dir", envDefault("WIREFLEET_MESH_STATE_DIR", mesh.DefaultStateDir), "state directory of the node [WIREFLEET_MESH_STATE_DIR]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("mesh forget: want exactly one wg IP")
	}
	ip, err := netip.ParseAddr(fs.Arg(0))
	if err != nil {
		return usageError("mesh forget: %q is not an IP address", fs.Arg(0))
	}
	was, err := mesh.NewClient(*stateDir).Forget(ctx, ip)
	if errors.Is(err, mesh.ErrNotRunning) {
		was, err = mesh.ForgetOffline(*stateDir, ip)
	}
	if err != nil {
		return fmt.Errorf("mesh forget: %w", err)
	}
	if was {
		fmt.Fprintf(stdout, "released %s: the next identity to claim it will be trusted\n", ip)
	} else {
		fmt.Fprintf(stdout, "%s was not bound\n", ip)
	}
	return nil
}

var meshUnit = template.Must(template.New("unit").Parse(`[Unit]
Description=Wirefleet mesh node (wg_netmanager mode)
Wants=network-online.target
After=network-online.target

[Service]
ExecStart={{.Bin}} mesh {{.Args}}
Restart=on-failure
RestartSec=2
StateDirectory=wirefleet/mesh
StateDirectoryMode=0700
# root: it creates the WireGuard link (or TUN), writes /proc/sys/net/ipv4/ip_forward when
# it relays, and serves the UAPI socket in /run/wireguard
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes

[Install]
WantedBy=multi-user.target
`))

func runMeshInstall(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mesh install", "[-bin PATH] [-- MESH FLAGS]", stderr)
	bin := fs.String("bin", "/usr/local/bin/wirefleet", "path of the wirefleet binary in the unit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		rest = []string{"-c", "/etc/wirefleet/network.yaml", "-p", "/etc/wirefleet/peer.yaml"}
	}
	return meshUnit.Execute(stdout, map[string]string{"Bin": *bin, "Args": strings.Join(rest, " ")})
}
