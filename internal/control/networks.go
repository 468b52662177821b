package control

import (
	"context"
	"net/netip"
	"slices"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/ipam"
	"github.com/wirefleet/wirefleet/internal/store"
)

// NetworkInput creates a network. Zero fields take defaults.
type NetworkInput struct {
	Name       string
	ListenPort uint16       // 0 = wirefleet.DefaultListenPort
	IPv4       netip.Prefix // host address/prefix, e.g. 198.51.100.1/24
	IPv6       netip.Prefix // e.g. 2001:db8:1::1/64
	Endpoint   string
	Routes     []netip.Prefix
	DNS        []netip.Addr
	MTU        int                      // 0 = wirefleet.DefaultMTU
	Keepalive  *int                     // nil = wirefleet.DefaultKeepalive; 0 disables
	Allocation wirefleet.AllocationMode // "" = sequential
	// PrivateKey nil: the server generates one. Import passes the existing key.
	PrivateKey *wirefleet.Key
}

// NetworkUpdate changes a network; nil fields are left alone. Changing IPv4/IPv6 (a
// pointer to the zero prefix removes that family) is refused with KindConflict if any
// peer address would fall outside, or on, the new network/broadcast/own address.
type NetworkUpdate struct {
	ListenPort *uint16
	IPv4       *netip.Prefix
	IPv6       *netip.Prefix
	Endpoint   *string
	Routes     *[]netip.Prefix
	DNS        *[]netip.Addr
	MTU        *int
	Keepalive  *int
	Allocation *wirefleet.AllocationMode
}

func (s *Service) buildNetwork(in NetworkInput) (wirefleet.Network, error) {
	now := s.clock()
	n := wirefleet.Network{
		Name:       in.Name,
		ListenPort: in.ListenPort,
		IPv4:       in.IPv4,
		IPv6:       in.IPv6,
		Endpoint:   in.Endpoint,
		Routes:     slices.Clone(in.Routes),
		DNS:        slices.Clone(in.DNS),
		MTU:        in.MTU,
		Keepalive:  wirefleet.DefaultKeepalive,
		Allocation: in.Allocation,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if n.ListenPort == 0 {
		n.ListenPort = wirefleet.DefaultListenPort
	}
	if n.MTU == 0 {
		n.MTU = wirefleet.DefaultMTU
	}
	if in.Keepalive != nil {
		n.Keepalive = *in.Keepalive
	}
	if n.Allocation == "" {
		n.Allocation = wirefleet.AllocSequential
	}
	var priv wirefleet.Key
	if in.PrivateKey != nil {
		priv = *in.PrivateKey
		if priv.IsZero() {
			return n, wirefleet.Errorf(wirefleet.KindInvalid, "private_key is all zeros")
		}
	} else {
		k, err := wirefleet.GeneratePrivateKey()
		if err != nil {
			return n, err
		}
		priv = k
	}
	n.PrivateKey = wirefleet.NewSecretKey(priv)
	n.PublicKey = priv.PublicKey()
	return n, n.Validate()
}

// CreateNetwork creates a network and its WireGuard key pair (the private key stays on the
// server). KindConflict if the name exists.
func (s *Service) CreateNetwork(ctx context.Context, in NetworkInput) (wirefleet.Network, error) {
	n, err := s.buildNetwork(in)
	if err != nil {
		return wirefleet.Network{}, err
	}
	err = s.st.Update(ctx, func(tx store.Tx) error {
		s.forgetNetwork(tx, n.Name)
		return tx.InsertNetwork(n)
	})
	return n, err
}

// GetNetwork returns a network (KindNotFound if absent).
func (s *Service) GetNetwork(ctx context.Context, name string) (wirefleet.Network, error) {
	var n wirefleet.Network
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		n, err = tx.GetNetwork(name)
		return err
	})
	return n, err
}

// ListNetworks returns all networks by name.
func (s *Service) ListNetworks(ctx context.Context) ([]wirefleet.Network, error) {
	var ns []wirefleet.Network
	err := s.st.View(ctx, func(tx store.ReadTx) (err error) {
		ns, err = tx.ListNetworks()
		return err
	})
	return ns, err
}

// UpdateNetwork applies u to the network name.
func (s *Service) UpdateNetwork(ctx context.Context, name string, u NetworkUpdate) (wirefleet.Network, error) {
	var out wirefleet.Network
	err := s.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.GetNetwork(name)
		if err != nil {
			return err
		}
		readdress := false
		if u.ListenPort != nil {
			n.ListenPort = *u.ListenPort
		}
		if u.IPv4 != nil && *u.IPv4 != n.IPv4 {
			n.IPv4, readdress = *u.IPv4, true
		}
		if u.IPv6 != nil && *u.IPv6 != n.IPv6 {
			n.IPv6, readdress = *u.IPv6, true
		}
		if u.Endpoint != nil {
			n.Endpoint = *u.Endpoint
		}
		if u.Routes != nil {
			n.Routes = slices.Clone(*u.Routes)
		}
		if u.DNS != nil {
			n.DNS = slices.Clone(*u.DNS)
		}
		if u.MTU != nil {
			n.MTU = *u.MTU
		}
		if u.Keepalive != nil {
			n.Keepalive = *u.Keepalive
		}
		if u.Allocation != nil {
			n.Allocation = *u.Allocation
		}
		n.UpdatedAt = s.clock()
		if err := n.Validate(); err != nil {
			return err
		}
		if readdress {
			// Every existing peer address must be valid in the new prefixes.
			addrs, err := tx.PeerAddresses(name)
			if err != nil {
				return err
			}
			p := ipam.New(n, s.rnd)
			for _, a := range addrs {
				if err := p.Reserve([]netip.Addr{a}); err != nil {
					return wirefleet.Errorf(wirefleet.KindConflict, "cannot change the addresses of network %q: peer address %s would be invalid (%v); move or delete those peers first", name, a, err)
				}
			}
		}
		s.forgetNetwork(tx, name)
		if err := tx.UpdateNetwork(n); err != nil {
			return err
		}
		out = n
		return nil
	})
	return out, err
}

// DeleteNetwork deletes a network and all its peers.
func (s *Service) DeleteNetwork(ctx context.Context, name string) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		s.forgetNetwork(tx, name)
		if err := tx.DeleteNetwork(name); err != nil {
			return err
		}
		tx.AfterCommit(func() { delete(s.pools, name) })
		return nil
	})
}
