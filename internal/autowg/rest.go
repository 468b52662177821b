package autowg

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/control"
)

// restServer builds the optional /api/v1 listener on the same store, so that registered
// devices show in the REST API and the CLI under their certificate names (and can be
// disabled there). With no token in the store yet, it creates an admin token and prints it
// once (only its hash is kept).
func restServer(ctx context.Context, svc *control.Service, listen string, stdout io.Writer, log *slog.Logger) (*http.Server, net.Listener, error) {
	h, err := api.New(api.Config{Service: svc, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("build the REST API: %w", err)
	}
	toks, err := svc.ListTokens(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list API tokens: %w", err)
	}
	if len(toks) == 0 {
		_, secret, err := svc.CreateToken(ctx, control.TokenInput{Name: "autowg admin", Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
		if err != nil {
			return nil, nil, fmt.Errorf("create the first admin token: %w", err)
		}
		if stdout == nil {
			stdout = os.Stdout
		}
		fmt.Fprintf(stdout, "REST API admin token (shown once, keep it): %s\n", secret)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s (--rest-listen): %w", listen, err)
	}
	log.Info("REST API listening", "listen", ln.Addr().String())
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln, nil
}
