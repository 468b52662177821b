package api

import (
	"slices"

	"github.com/wirefleet/wirefleet"
)

// perm is what a route needs. Roles grant perms through rolePerms; routes name exactly one
// perm in the route table, so the RBAC matrix test can derive every expected status.
type perm string

const (
	permPublic        perm = "public"         // no authentication (health, OpenAPI)
	permNetworksRead  perm = "networks:read"  // list/show networks
	permNetworksWrite perm = "networks:write" // create/update/delete/import networks
	permPeersRead     perm = "peers:read"     // list/show peers
	permPeersWrite    perm = "peers:write"    // create/update/delete peers, client configs
	permTokens        perm = "tokens"         // create/list/revoke tokens
	permStateRead     perm = "state:read"     // replication snapshot and log
	permStatsWrite    perm = "stats:write"    // gateways push peer statistics
	permRegister      perm = "register"       // zero-touch device registration (next issue)
)

// rolePerms is the RBAC table. admin has every perm; the others only what their job needs.
var rolePerms = map[wirefleet.Role][]perm{
	wirefleet.RoleAdmin: {permNetworksRead, permNetworksWrite, permPeersRead, permPeersWrite,
		permTokens, permStateRead, permStatsWrite, permRegister},
	wirefleet.RoleOperator:  {permNetworksRead, permNetworksWrite, permPeersRead, permPeersWrite},
	wirefleet.RoleViewer:    {permNetworksRead, permPeersRead},
	wirefleet.RoleGateway:   {permStateRead, permStatsWrite},
	wirefleet.RoleFollower:  {permStateRead},
	wirefleet.RoleRegistrar: {permRegister},
}

// Principal is an authenticated caller: a token or a client certificate.
type Principal struct {
	// Name identifies the caller in logs: "token:<id>" or "cert:<CN>" (never a secret).
	Name  string
	Roles []wirefleet.Role
	// Networks scopes the caller; empty means every network.
	Networks []string
	// Anonymous is set for requests without credentials (public routes only).
	Anonymous bool
}

// can reports whether one of p's roles grants perm.
func (p Principal) can(x perm) bool {
	if x == permPublic {
		return true
	}
	for _, r := range p.Roles {
		if slices.Contains(rolePerms[r], x) {
			return true
		}
	}
	return false
}

// inScope reports whether p may act on network.
func (p Principal) inScope(network string) bool {
	return len(p.Networks) == 0 || slices.Contains(p.Networks, network)
}

// scopeError is the error for a network outside a scoped caller's networks.
func (p Principal) scopeError(network string) error {
	return wirefleet.Errorf(wirefleet.KindForbidden, "%s is limited to networks %v and may not use network %q", p.Name, p.Networks, network)
}
