package api

import "net/http"

// routeTable is every route of the API with the permission it needs. The RBAC matrix and
// the OpenAPI coverage tests iterate over it.
func (s *Server) routeTable() []route {
	const n = "/api/v1/networks/{network}"
	return []route{
		{method: http.MethodGet, pattern: "/healthz", perm: permPublic, handler: s.healthz},
		{method: http.MethodGet, pattern: "/readyz", perm: permPublic, handler: s.readyz},
		{method: http.MethodGet, pattern: "/api/v1/openapi.json", perm: permPublic, handler: s.openapiJSON},

		{method: http.MethodGet, pattern: "/api/v1/networks", perm: permNetworksRead, handler: s.listNetworks},
		{method: http.MethodPost, pattern: "/api/v1/networks", perm: permNetworksWrite, handler: s.createNetwork},
		{method: http.MethodPost, pattern: "/api/v1/networks/import", perm: permNetworksWrite, handler: s.importNetwork},
		{method: http.MethodGet, pattern: n, perm: permNetworksRead, scoped: true, handler: s.getNetwork},
		{method: http.MethodPatch, pattern: n, perm: permNetworksWrite, scoped: true, handler: s.updateNetwork},
		{method: http.MethodDelete, pattern: n, perm: permNetworksWrite, scoped: true, handler: s.deleteNetwork},

		{method: http.MethodGet, pattern: n + "/peers", perm: permPeersRead, scoped: true, handler: s.listPeers},
		{method: http.MethodPost, pattern: n + "/peers", perm: permPeersWrite, scoped: true, handler: s.createPeer},
		{method: http.MethodGet, pattern: n + "/peers/{key}", perm: permPeersRead, scoped: true, handler: s.getPeer},
		{method: http.MethodPatch, pattern: n + "/peers/{key}", perm: permPeersWrite, scoped: true, handler: s.updatePeer},
		{method: http.MethodDelete, pattern: n + "/peers/{key}", perm: permPeersWrite, scoped: true, handler: s.deletePeer},
		{method: http.MethodPost, pattern: n + "/peers/{key}/enable", perm: permPeersWrite, scoped: true, handler: s.setPeerEnabled(true)},
		{method: http.MethodPost, pattern: n + "/peers/{key}/disable", perm: permPeersWrite, scoped: true, handler: s.setPeerEnabled(false)},
		{method: http.MethodPost, pattern: n + "/clients", perm: permPeersWrite, scoped: true, handler: s.createClient},

		{method: http.MethodGet, pattern: "/api/v1/tokens", perm: permTokens, handler: s.listTokens},
		{method: http.MethodPost, pattern: "/api/v1/tokens", perm: permTokens, handler: s.createToken},
		{method: http.MethodDelete, pattern: "/api/v1/tokens/{id}", perm: permTokens, handler: s.revokeToken},

		// Gateways and followers: snapshot + log (the handlers apply the caller's roles and
		// network scope to what they show); stats pushes; session reads filtered by scope.
		{method: http.MethodGet, pattern: "/api/v1/replication/snapshot", perm: permStateRead, handler: s.replSnapshot},
		{method: http.MethodGet, pattern: "/api/v1/replication/log", perm: permStateRead, handler: s.replLog},
		{method: http.MethodPost, pattern: "/api/v1/stats", perm: permStatsWrite, handler: s.sessionsRoute(func(x Sessions) handlerFunc { return x.PushStats })},
		{method: http.MethodGet, pattern: "/api/v1/sessions", perm: permPeersRead, handler: s.sessionsRoute(func(x Sessions) handlerFunc { return x.List })},
		{method: http.MethodGet, pattern: "/api/v1/sessions/events", perm: permPeersRead, handler: s.sessionsRoute(func(x Sessions) handlerFunc { return x.Events })},
		{method: http.MethodGet, pattern: "/api/v1/sessions/peers", perm: permPeersRead, handler: s.sessionsRoute(func(x Sessions) handlerFunc { return x.LastSeen })},
	}
}
