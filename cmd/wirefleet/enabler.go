package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/wirefleet/wirefleet/internal/enabler"
)

func init() {
	register(command{
		name:    "enabler",
		summary: "run the ASSIST-IoT VPN enabler compatible API with its WireGuard interface",
		run:     runEnabler,
	})
}

// enablerIgnoredEnv are upstream's storage variables: accepted so that Helm values map
// 1:1, and ignored (Wirefleet has its own store).
var enablerIgnoredEnv = []string{"MONGODB_HOST", "MONGODB_PORT", "MONGODB_USER", "MONGODB_PASS", "LTSE", "LTSE_URL", "LTSE_INDEX"}

func runEnabler(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := enabler.Default()
	fs := newFlagSet("enabler", "[flags]  (configured like upstream, by environment variables)", stderr)
	data := fs.String("data", envDefault("WIREFLEET_DATA", def.DataDir), "`DIR` of the store [WIREFLEET_DATA]")
	apiPort := fs.String("api-port", envDefault("API_PORT", def.APIPort), "TCP port of the enabler API [API_PORT]")
	host := fs.String("listen-host", envDefault("LISTEN_HOST", ""), "address the API listens on; empty: every interface, as upstream [LISTEN_HOST]")
	serverIP := fs.String("server-ip", envDefault("SERVER_IP", ""), "public IP address or DNS name clients connect to; required [SERVER_IP]")
	subnet := fs.String("wg-subnet", envDefault("WG_SUBNET", def.Subnet), "interface address with its mask, e.g. 192.0.2.1/24 [WG_SUBNET]")
	wgPort := fs.String("wg-port", envDefault("WG_PORT", def.WGPort), "WireGuard UDP port, advertised as serverPort [WG_PORT]")
	allowed := fs.String("peer-allowed-ips", envDefault("PEER_ALLOWED_IPS", def.AllowedIPs), "what clients route into the tunnel, echoed as allowedIPs [PEER_ALLOWED_IPS]")
	device := fs.String("wg-device", envDefault("WG_DEVICE", def.Device), "WireGuard interface name [WG_DEVICE]")
	backend := fs.String("wg-backend", envDefault("WG_BACKEND", def.Backend), "WireGuard backend: auto, kernel or userspace [WG_BACKEND]")
	network := fs.String("network", envDefault("WIREFLEET_NETWORK", ""), "Wirefleet network name; empty: the device name [WIREFLEET_NETWORK]")
	rest := fs.String("rest-listen", envDefault("REST_LISTEN", ""), "also serve the Wirefleet REST API (/api/v1) on this `host:port`; empty: off [REST_LISTEN]")
	metricsListen := fs.String("metrics-listen", envDefault("METRICS_LISTEN", ""), "serve /metrics, /healthz and /readyz on this `host:port` (also on -rest-listen); empty: off [METRICS_LISTEN]")
	statsInterval := fs.Duration("stats-interval", enabler.DefaultStatsInterval, "period of the device read that feeds sessions (/api/v1/sessions)")
	tokenFile := fs.String("api-token-file", envDefault("API_TOKEN_FILE", ""), "`FILE` with bearer tokens, one a line, that turn API auth on [API_TOKEN_FILE]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("enabler takes no arguments, got %q", fs.Args())
	}
	cfg := def
	cfg.DataDir, cfg.APIPort, cfg.ListenHost, cfg.ServerIP = *data, *apiPort, *host, *serverIP
	cfg.Subnet, cfg.WGPort, cfg.AllowedIPs = *subnet, *wgPort, *allowed
	cfg.Device, cfg.Backend, cfg.Network = *device, *backend, *network
	cfg.RESTListen, cfg.Stdout = *rest, stdout
	cfg.MetricsListen, cfg.StatsInterval = *metricsListen, *statsInterval
	// WG_PRIVATE_KEY stays out of the flags: a key on a command line is visible to every
	// local user in the process list.
	cfg.PrivateKey = os.Getenv("WG_PRIVATE_KEY")
	if t := os.Getenv("API_TOKEN"); t != "" {
		cfg.APITokens = append(cfg.APITokens, t)
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("read -api-token-file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				cfg.APITokens = append(cfg.APITokens, line)
			}
		}
	}
	for _, e := range enablerIgnoredEnv {
		if os.Getenv(e) != "" {
			cfg.IgnoredEnv = append(cfg.IgnoredEnv, e)
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	return enabler.Run(ctx, cfg)
}
