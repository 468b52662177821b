// Package api is the REST API /api/v1 of the control plane: routes, authentication (bearer
// tokens and mTLS client certificates), role-based access control with network scopes,
// problem+json errors through one kind→status table, and the OpenAPI document.
//
// Every route is declared once in the route table (routes.go) with the permission it needs;
// the RBAC matrix test and the OpenAPI coverage test are driven by that table, so a route
// cannot be added without being authorised and documented.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/problem"
)

// Config configures a Server.
type Config struct {
	// Service implements the use cases (internal/control.Service).
	Service Service
	// CNRoles maps verified client-certificate CNs to roles (mTLS); nil disables mTLS auth.
	CNRoles CNRoles
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Ready reports whether the server can serve (store open and writable); nil: always.
	Ready func(ctx context.Context) error
	// Now is the clock of the authentication cache; nil means time.Now.
	Now func() time.Time
	// Replication serves GET /api/v1/replication/{snapshot,log}; nil: those routes answer
	// 404 (after authentication and authorisation, like every route).
	Replication Replication
	// Sessions serves POST /api/v1/stats and GET /api/v1/sessions…; nil: 404.
	Sessions Sessions
}

// Server is the http.Handler of the REST API.
type Server struct {
	svc     Service
	auth    *authCache
	cnRoles CNRoles
	log     *slog.Logger
	ready   func(ctx context.Context) error
	repl    Replication
	sess    Sessions
	mux     *http.ServeMux
	routes  []route
	openapi []byte // the OpenAPI document as JSON
}

// New builds the API handler.
func New(cfg Config) (*Server, error) {
	s := &Server{
		svc:     cfg.Service,
		cnRoles: cfg.CNRoles,
		log:     cfg.Logger,
		ready:   cfg.Ready,
		repl:    cfg.Replication,
		sess:    cfg.Sessions,
		mux:     http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s.auth = newAuthCache(cfg.Service, now)
	doc, err := OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	s.openapi = doc
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	// Unknown paths and methods answer in problem+json too.
	s.mux.HandleFunc("/", s.notFound)
	return s, nil
}

// notFound answers unknown paths (404) and known paths with another method (405 with
// Allow), in problem+json like every other error.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := s.mux.Handler(r2); pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		s.writeError(w, r, wirefleet.Errorf(wirefleet.KindNotFound, "no such endpoint: %s %s (see /api/v1/openapi.json)", r.Method, r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeProblem(w, Problem{
		Type: problem.Type(wirefleet.KindInvalid), Title: http.StatusText(http.StatusMethodNotAllowed),
		Status: http.StatusMethodNotAllowed, Kind: string(wirefleet.KindInvalid),
		Detail: fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, ", ")),
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handlerFunc is a route handler: it writes a success response or returns an error that
// wrap renders as problem+json.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p Principal) error

// route is one entry of the route table.
type route struct {
	method  string
	pattern string // net/http pattern without the method
	perm    perm
	// scoped routes have a {network} path value that must be in the caller's scope.
	scoped  bool
	handler handlerFunc
}

// wrap authenticates, authorises and runs a route, logging the outcome (never secrets).
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		// Public routes ignore credentials: a probe with a stale token must still see health.
		p, err := Principal{Anonymous: true, Name: "anonymous"}, error(nil)
		if rt.perm != permPublic {
			p, err = s.authenticate(r)
			if err == nil {
				err = authorize(p, rt.perm)
			}
		}
		if err == nil && rt.scoped {
			if n := r.PathValue("network"); !p.inScope(n) {
				err = p.scopeError(n)
			}
		}
		if err == nil {
			err = rt.handler(sw, r, p)
		}
		if err != nil {
			s.writeError(sw, r, err)
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) { // skip building the attributes
			s.log.DebugContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "caller", p.Name, "duration", time.Since(start))
		}
	})
}

// statusWriter records the status for the request log. Unwrap lets
// http.ResponseController reach the connection's Flush and write deadlines (the
// replication log is a long-lived stream).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes through for callers that use http.Flusher directly; a writer underneath
// that cannot flush is left alone.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ Principal) error {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			return wirefleet.Errorf(wirefleet.KindUnavailable, "not ready: %v", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) openapiJSON(w http.ResponseWriter, _ *http.Request, _ Principal) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openapi)
	return nil
}
