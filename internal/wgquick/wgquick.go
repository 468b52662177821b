// Package wgquick parses and renders wg-quick configuration files: the [Interface] and
// [Peer] sections that `wg-quick`, the WireGuard apps and every WireGuard manager exchange.
// The parser reads the files of existing estates for import, so it is tolerant where
// wg-quick is (comments, unknown keys such as PostUp, case-insensitive keys, several
// Address lines) and strict where a mistake would lose a client (bad keys, bad CIDRs,
// duplicate peers). The renderer writes client configs in a fixed order so that the same
// input always yields the same bytes (golden files, reproducible QR codes).
package wgquick

import (
	"net/netip"

	"github.com/wirefleet/wirefleet"
)

// Config is one wg-quick file.
type Config struct {
	Interface Interface
	Peers     []Peer
}

// Interface is the [Interface] section. Keys wg-quick knows but Wirefleet does not use
// (Table, PreUp, PostUp, PreDown, PostDown, SaveConfig, FwMark) are kept in Extra so that a
// caller can warn about them; unknown keys are tolerated the same way.
type Interface struct {
	PrivateKey wirefleet.Key // zero when absent
	Addresses  []netip.Prefix
	ListenPort int // 0 when absent
	DNS        []string
	MTU        int // 0 when absent
	Extra      []KeyValue
}

// Peer is one [Peer] section.
type Peer struct {
	// Name comes from a comment in or just above the section (`# Name = laptop`,
	// `# friendly_name = laptop`, `### Client laptop`), the conventions of the common
	// WireGuard managers; empty when there is none.
	Name                string
	PublicKey           wirefleet.Key
	PresharedKey        wirefleet.Key // zero when absent
	AllowedIPs          []netip.Prefix
	Endpoint            string // host:port, empty when absent
	PersistentKeepalive int    // seconds, 0 when absent
	Extra               []KeyValue
	// Line is the line number of the [Peer] header, for error messages of later stages.
	Line int
}

// KeyValue is a key the parser tolerated but did not interpret.
type KeyValue struct {
	Key, Value string
	Line       int
}
