package api

import (
	"net/http"

	"github.com/wirefleet/wirefleet"
)

// Replication serves the replication routes (snapshot and NDJSON log stream) for an
// authorised caller. The composition root adapts internal/replication's handler; the api
// package stays free of it. The handler writes every answer itself, errors included: its
// 409/410 problems carry a reason the consumer acts on.
type Replication interface {
	Snapshot(w http.ResponseWriter, r *http.Request, p Principal)
	Log(w http.ResponseWriter, r *http.Request, p Principal)
}

// Sessions serves the statistics push and the session reads for an authorised caller
// (internal/sessions, adapted by the composition root). Handlers filter by p.Networks
// and return wirefleet errors that the API renders as problem+json.
type Sessions interface {
	PushStats(w http.ResponseWriter, r *http.Request, p Principal) error
	List(w http.ResponseWriter, r *http.Request, p Principal) error
	Events(w http.ResponseWriter, r *http.Request, p Principal) error
	LastSeen(w http.ResponseWriter, r *http.Request, p Principal) error
}

// notServed is the answer of a managed route whose handler this server was built without
// (a pure API in tests, or tools embedding only the REST API).
func notServed(what string) error {
	return wirefleet.Errorf(wirefleet.KindNotFound, "this server does not serve %s", what)
}

func (s *Server) replSnapshot(w http.ResponseWriter, r *http.Request, p Principal) error {
	if s.repl == nil {
		return notServed("replication")
	}
	s.repl.Snapshot(w, r, p)
	return nil
}

func (s *Server) replLog(w http.ResponseWriter, r *http.Request, p Principal) error {
	if s.repl == nil {
		return notServed("replication")
	}
	s.repl.Log(w, r, p)
	return nil
}

// sessionsRoute runs one of the Sessions handlers, picked by f.
func (s *Server) sessionsRoute(f func(Sessions) handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		if s.sess == nil {
			return notServed("statistics and sessions")
		}
		return f(s.sess)(w, r, p)
	}
}
