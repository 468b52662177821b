// Package server is the composition root of `wirefleet server`, the control plane: it opens
// the SQLite store in the data directory, builds the service layer (internal/control) and
// the REST API (internal/api), serves HTTP or HTTPS (optionally with client certificates),
// and shuts everything down in order when its context ends (SIGTERM).
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
)

// DBFile is the name of the SQLite database inside the data directory.
const DBFile = "wirefleet.db"

// Config configures the control plane.
type Config struct {
	// DataDir holds the database; created if missing.
	DataDir string
	// Listen is the API address, host:port.
	Listen string
	// NoGateway runs a pure control plane, without the local gateway (and without the
	// first-run default network and admin token).
	NoGateway bool
	// AllInOne configures the default network, the local gateway and sessions.
	AllInOne AllInOne
	// TLSCert and TLSKey serve HTTPS; ClientCA additionally accepts client certificates
	// signed by that CA, whose CNs CNRolesFile maps to roles.
	TLSCert, TLSKey, ClientCA, CNRolesFile string
	// Registration serves zero-touch device registration (autowg) on its own listener
	// when Registration.Listen is set (register.go).
	Registration Registration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// ShutdownGrace bounds how long in-flight requests may finish on shutdown (default 10 s).
	ShutdownGrace time.Duration
}

// Validate checks the configuration; errors name the flag and the bad value.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return wirefleet.Errorf(wirefleet.KindInvalid, "-data is empty: give the directory for the database")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return wirefleet.Errorf(wirefleet.KindInvalid, "-listen %q is not host:port (like 127.0.0.1:8080 or :8080)", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return wirefleet.Errorf(wirefleet.KindInvalid, "-tls-cert and -tls-key go together (got cert %q, key %q)", c.TLSCert, c.TLSKey)
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		return wirefleet.Errorf(wirefleet.KindInvalid, "-client-ca %q needs -tls-cert and -tls-key: client certificates only exist over TLS", c.ClientCA)
	}
	if (c.ClientCA == "") != (c.CNRolesFile == "") {
		return wirefleet.Errorf(wirefleet.KindInvalid, "-client-ca and -cn-roles go together (got CA %q, CN map %q)", c.ClientCA, c.CNRolesFile)
	}
	return nil
}

// OpenStore opens (creating it if needed) the store in dataDir, holding the data
// directory's lock until the returned close function runs. The store has one writer per
// database (it keeps the log head in memory), so a second process must never write to a
// directory a server is using: the lock turns that into a clear error.
func OpenStore(ctx context.Context, dataDir string, log *slog.Logger) (*sqlite.Store, func() error, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, DBFile), sqlite.Options{Logger: log})
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("open the store in %s: %w", dataDir, err)
	}
	var once sync.Once
	var closeErr error
	closeFn := func() error {
		once.Do(func() {
			closeErr = st.Close()
			unlock()
		})
		return closeErr
	}
	return st, closeFn, nil
}

// Run serves the control plane until ctx ends, then shuts down: it stops accepting, lets
// in-flight requests finish, stops the background jobs and closes the store.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	grace := cfg.ShutdownGrace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	var cnRoles api.CNRoles
	var tlsConf *tls.Config
	if cfg.TLSCert != "" {
		var err error
		if tlsConf, err = serverTLS(cfg); err != nil {
			return err
		}
		if cfg.CNRolesFile != "" {
			if cnRoles, err = api.LoadCNRoles(cfg.CNRolesFile); err != nil {
				return err
			}
		}
	}

	st, closeStore, err := OpenStore(ctx, cfg.DataDir, log)
	if err != nil {
		return err
	}
	defer closeStore()
	svc := control.New(st, control.Options{Logger: log})
	side, err := newManagedSide(ctx, cfg, st, svc, log)
	if err != nil {
		return err
	}
	repl, sess := side.apiRoutes()
	handler, err := api.New(api.Config{
		Service:     svc,
		CNRoles:     cnRoles,
		Logger:      log,
		Ready:       func(ctx context.Context) error { _, _, err := svc.Head(ctx); return err },
		Replication: repl,
		Sessions:    sess,
	})
	if err != nil {
		side.stop()
		return err
	}
	side.mount(handler)
	regCtx, stopReg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReg()
	regDone, err := startRegistration(regCtx, svc, cfg.Registration, log)
	if err != nil {
		side.stop()
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		side.stop()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{
		Handler:           side.handler,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // imports upload whole estates
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(side.endStreams)
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	bgDone := make(chan error, 1)
	go func() { bgDone <- svc.Run(bg) }()

	serveErr := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			serveErr <- hs.ServeTLS(ln, "", "")
		} else {
			serveErr <- hs.Serve(ln)
		}
	}()
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	log.Info("control plane listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(), "data", cfg.DataDir, "mtls", cnRoles != nil)
	side.startGateway(bg, ln.Addr(), tlsConf != nil)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("shutdown: requests still running were cut", "err", err)
	}
	stopReg()
	if err := <-regDone; err != nil {
		log.Warn("registration listener", "err", err)
	}
	stopBG()
	side.stop()
	if err := <-bgDone; err != nil {
		log.Warn("background jobs", "err", err)
	}
	if err := closeStore(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close the store: %w", err)
	}
	return runErr
}

// serverTLS builds the HTTPS configuration; with a client CA, certificates are verified
// when given (tokens keep working for callers without one).
func serverTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load -tls-cert/-tls-key: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("read -client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, wirefleet.Errorf(wirefleet.KindInvalid, "-client-ca %s holds no PEM certificate", cfg.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// CreateTokenOffline creates a token directly in the store of dataDir (bootstrap before any
// token exists; works whether or not a server is running on that directory) and returns
// it with its secret.
func CreateTokenOffline(ctx context.Context, dataDir string, in control.TokenInput, log *slog.Logger) (wirefleet.Token, string, error) {
	if log == nil {
		log = slog.Default()
	}
	st, closeStore, err := OpenStore(ctx, dataDir, log)
	if err != nil {
		return wirefleet.Token{}, "", err
	}
	defer closeStore()
	svc := control.New(st, control.Options{Logger: log})
	return svc.CreateToken(ctx, in)
}
