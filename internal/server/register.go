package server

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/wirefleet/wirefleet/internal/autowg"
	"github.com/wirefleet/wirefleet/internal/control"
)

// Registration configures the zero-touch registration listener (specs/autowg.md,
// docs/autowg.md): off when Listen is empty.
type Registration struct {
	// Listen is the registration address, host:port (-register-listen).
	Listen string
	// TrustedProxies may send X-Client-Subject (-register-trusted-proxy); none by default.
	TrustedProxies []netip.Prefix
	// File holds the per-network settings (-register-config).
	File string
	// Ready, when set, receives the listener's address (tests).
	Ready func(net.Addr)
}

// startRegistration serves registrations until ctx ends; the returned channel yields the
// listener's outcome (nil after a clean stop). Configuration errors come back at once.
func startRegistration(ctx context.Context, svc *control.Service, r Registration, log *slog.Logger) (<-chan error, error) {
	done := make(chan error, 1)
	if r.Listen == "" {
		close(done)
		return done, nil
	}
	ready := make(chan error, 1)
	go func() {
		err := autowg.ServeRegistration(ctx, svc, autowg.RegistrationConfig{Listen: r.Listen, TrustedProxies: r.TrustedProxies, File: r.File, Logger: log,
			Ready: func(a net.Addr) {
				if r.Ready != nil {
					r.Ready(a)
				}
				ready <- nil
			}})
		select {
		case ready <- err: // failed before serving
		default:
		}
		done <- err
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return done, nil
}
