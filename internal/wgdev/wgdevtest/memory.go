// Package wgdevtest holds an in-memory wgdev.Device for unit tests of the logic above the
// device layer, and the conformance suite every real backend must pass.
package wgdevtest

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Memory is an in-memory device. It follows the port's semantics (upsert keeps counters,
// removing an unknown key is a no-op) so unit tests above it see what a real device does.
type Memory struct {
	mu    sync.Mutex // guards every field below
	info  wgdev.Info
	peers map[wirefleet.Key]*wgdev.PeerStatus
	// Applies counts ApplyPeers calls, for tests asserting O(1) writes.
	applies int
}

var _ wgdev.Device = (*Memory)(nil)

// NewMemory returns an empty device called name.
func NewMemory(name string) *Memory {
	return &Memory{
		info:  wgdev.Info{Name: name, Backend: "memory", Created: time.Now()},
		peers: map[wirefleet.Key]*wgdev.PeerStatus{},
	}
}

// ApplyPeers implements wgdev.Device.
func (m *Memory) ApplyPeers(ctx context.Context, upsert []wgdev.Peer, remove []wirefleet.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := wgdev.ValidatePeers(upsert, remove); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applies++
	for _, p := range upsert {
		p.AllowedIPs = slices.Clone(p.AllowedIPs)
		if cur, ok := m.peers[p.PublicKey]; ok {
			cur.Peer = p
			continue
		}
		m.peers[p.PublicKey] = &wgdev.PeerStatus{Peer: p}
	}
	for _, k := range remove {
		delete(m.peers, k)
	}
	return nil
}

// Peers implements wgdev.Device; peers are sorted by key for stable output.
func (m *Memory) Peers(ctx context.Context) ([]wgdev.PeerStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]wgdev.PeerStatus, 0, len(m.peers))
	for _, p := range m.peers {
		c := *p
		c.AllowedIPs = slices.Clone(p.AllowedIPs)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].PublicKey[:]) < string(out[j].PublicKey[:]) })
	return out, nil
}

// Configure implements wgdev.Device.
func (m *Memory) Configure(ctx context.Context, cfg wgdev.Interface) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cfg.PrivateKey != nil {
		m.info.PublicKey = cfg.PrivateKey.PublicKey()
	}
	if cfg.ListenPort != nil {
		m.info.ListenPort = *cfg.ListenPort
	}
	if cfg.Addresses != nil {
		m.info.Addresses = slices.Clone(cfg.Addresses)
	}
	if cfg.MTU != 0 {
		m.info.MTU = cfg.MTU
	}
	return nil
}

// Info implements wgdev.Device.
func (m *Memory) Info(ctx context.Context) (wgdev.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.info
	i.Addresses = slices.Clone(i.Addresses)
	return i, nil
}

// Close implements wgdev.Device.
func (m *Memory) Close() error { return nil }

// SetStats sets a peer's statistics as if traffic had flowed (tests of stats consumers).
func (m *Memory) SetStats(k wirefleet.Key, handshake time.Time, rx, tx int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.peers[k]; ok {
		p.LastHandshake, p.RxBytes, p.TxBytes = handshake, rx, tx
	}
}

// Applies returns how many ApplyPeers calls the device has seen.
func (m *Memory) Applies() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applies
}

// HasAddr is a small helper for tests: whether any peer has prefix p.
func (m *Memory) HasAddr(p netip.Prefix) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, peer := range m.peers {
		if slices.Contains(peer.AllowedIPs, p) {
			return true
		}
	}
	return false
}
