package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/wirefleet/wirefleet/internal/server"
)

func init() {
	register(command{name: "server", summary: "run the control plane (REST API, store, op log)", run: runServer})
}

func runServer(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("server", "[flags]", stderr)
	data := fs.String("data", envDefault("WIREFLEET_DATA", "/var/lib/wirefleet"), "data `directory` (SQLite database) [WIREFLEET_DATA]")
	listen := fs.String("listen", envDefault("WIREFLEET_LISTEN", "127.0.0.1:8080"), "API address host:port [WIREFLEET_LISTEN]")
	noGateway := fs.Bool("no-gateway", false, "run a pure control plane, without the local gateway")
	cert := fs.String("tls-cert", envDefault("WIREFLEET_TLS_CERT", ""), "serve HTTPS with this certificate `file` [WIREFLEET_TLS_CERT]")
	key := fs.String("tls-key", envDefault("WIREFLEET_TLS_KEY", ""), "private key `file` of -tls-cert [WIREFLEET_TLS_KEY]")
	ca := fs.String("client-ca", envDefault("WIREFLEET_CLIENT_CA", ""), "accept client certificates signed by this CA `file` (mTLS) [WIREFLEET_CLIENT_CA]")
	cnRoles := fs.String("cn-roles", envDefault("WIREFLEET_CN_ROLES", ""), "YAML `file` mapping certificate CNs to roles [WIREFLEET_CN_ROLES]")
	debug := fs.Bool("debug", false, "log every request")
	allInOne := addAllInOneFlags(fs) // default network, local gateway, sessions (managed.go)
	reg := addRegisterFlags(fs)      // zero-touch registration (server_register.go)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("server takes no arguments, got %q", fs.Args())
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	cfg := server.Config{
		DataDir: *data, Listen: *listen, NoGateway: *noGateway,
		TLSCert: *cert, TLSKey: *key, ClientCA: *ca, CNRolesFile: *cnRoles,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	var err error
	if cfg.AllInOne, err = allInOne.config(); err != nil {
		return err
	}
	if cfg.Registration, err = reg.config(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	return server.Run(ctx, cfg)
}
