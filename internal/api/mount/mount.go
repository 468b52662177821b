// Package mount adapts the replication and sessions handlers to the API's route table
// (api.Replication, api.Sessions): the API authenticates (tokens, mTLS) and authorises
// (state:read, stats:write, peers:read), then these hand over the caller's roles, name and
// network scope. Every composition root that serves those routes (server, enabler) mounts
// them through here.
package mount

import (
	"net/http"

	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/replication"
	"github.com/wirefleet/wirefleet/internal/sessions"
)

// Replication is h as the API's replication routes.
func Replication(h *replication.Handler) api.Replication { return replRoutes{h} }

// Sessions is h as the API's stats and sessions routes.
func Sessions(h sessions.Handler) api.Sessions { return sessionRoutes{h} }

type replRoutes struct{ h *replication.Handler }

func (x replRoutes) Snapshot(w http.ResponseWriter, r *http.Request, p api.Principal) {
	x.h.Snapshot(w, r, replication.Caller{Roles: p.Roles, Networks: p.Networks})
}

func (x replRoutes) Log(w http.ResponseWriter, r *http.Request, p api.Principal) {
	x.h.Log(w, r, replication.Caller{Roles: p.Roles, Networks: p.Networks})
}

type sessionRoutes struct{ h sessions.Handler }

// sessionsCaller names the caller ("token:<id>" or "cert:<CN>": the gateway name of a
// report without one) and carries its scope.
func sessionsCaller(p api.Principal) sessions.Caller {
	return sessions.Caller{Name: p.Name, Networks: p.Networks}
}

func (x sessionRoutes) PushStats(w http.ResponseWriter, r *http.Request, p api.Principal) error {
	return x.h.PushStats(w, r, sessionsCaller(p))
}

func (x sessionRoutes) List(w http.ResponseWriter, r *http.Request, p api.Principal) error {
	return x.h.List(w, r, sessionsCaller(p))
}

func (x sessionRoutes) Events(w http.ResponseWriter, r *http.Request, p api.Principal) error {
	return x.h.Events(w, r, sessionsCaller(p))
}

func (x sessionRoutes) LastSeen(w http.ResponseWriter, r *http.Request, p api.Principal) error {
	return x.h.LastSeen(w, r, sessionsCaller(p))
}
