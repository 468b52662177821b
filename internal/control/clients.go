package control

import (
	"context"
	"net/netip"
	"time"

	"github.com/wirefleet/wirefleet"
)

// ClientInput creates a client whose key pair the server generates.
type ClientInput struct {
	Network   string
	Name      string
	Addresses []netip.Addr // empty = allocate
	// PresharedKey generates a preshared key too.
	PresharedKey bool
	ExpiresAt    *time.Time
}

// Client is the result of CreateClient: everything needed to render the client's wg-quick
// config. PrivateKey (and PresharedKey) are shown this once and never stored (the PSK is
// stored: the gateways need it). They are SecretKeys: call Reveal() when rendering.
type Client struct {
	Peer         wirefleet.Peer
	Network      wirefleet.Network
	PrivateKey   wirefleet.SecretKey
	PresharedKey wirefleet.SecretKey
}

// CreateClient generates a key pair, stores the peer with only the public key, and returns
// the private key once.
func (s *Service) CreateClient(ctx context.Context, in ClientInput) (Client, error) {
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		return Client{}, err
	}
	pin := PeerInput{
		Network:   in.Network,
		PublicKey: priv.PublicKey(),
		Name:      in.Name,
		Addresses: in.Addresses,
		ExpiresAt: in.ExpiresAt,
	}
	if in.PresharedKey {
		psk, err := wirefleet.GeneratePresharedKey()
		if err != nil {
			return Client{}, err
		}
		pin.PresharedKey = &psk
	}
	p, err := s.CreatePeer(ctx, pin)
	if err != nil {
		return Client{}, err
	}
	n, err := s.GetNetwork(ctx, in.Network)
	if err != nil {
		return Client{}, err
	}
	return Client{Peer: p, Network: n, PrivateKey: wirefleet.NewSecretKey(priv), PresharedKey: p.PresharedKey}, nil
}
