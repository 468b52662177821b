// Package wirefleet is the domain of the Wirefleet VPN fleet manager: keys, networks,
// peers, tokens, sessions, the operation log entry, and the error kinds every adapter maps
// to its own wire format. It imports only the standard library so that every adapter
// (store, API, gateway, mesh) can share it without import cycles.
package wirefleet
