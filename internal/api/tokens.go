package api

import (
	"net/http"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
)

// requireUnscoped keeps network-scoped callers away from token management: a scoped admin
// could otherwise mint an unscoped token and escape its scope.
func requireUnscoped(p Principal) error {
	if len(p.Networks) > 0 {
		return wirefleet.Errorf(wirefleet.KindForbidden, "%s is limited to networks %v; managing tokens needs an unscoped admin token", p.Name, p.Networks)
	}
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := requireUnscoped(p); err != nil {
		return err
	}
	ts, err := s.svc.ListTokens(r.Context())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []wirefleet.Token{}
	}
	writeJSON(w, http.StatusOK, wire.TokenList{Items: ts})
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := requireUnscoped(p); err != nil {
		return err
	}
	var req wire.TokenCreate
	if err := decodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	t, secret, err := s.svc.CreateToken(r.Context(), control.TokenInput{
		Name: req.Name, Roles: req.Roles, Networks: req.Networks, ExpiresAt: req.ExpiresAt,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, wire.TokenCreated{Token: t, Secret: secret})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := requireUnscoped(p); err != nil {
		return err
	}
	err := s.svc.RevokeToken(r.Context(), r.PathValue("id"))
	s.auth.invalidate() // even on error: the outcome may be unknown (timeout)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
