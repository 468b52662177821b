package api

import (
	"context"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
)

// Service is what the API needs from the service layer; *control.Service implements it.
type Service interface {
	Authenticator

	CreateNetwork(ctx context.Context, in control.NetworkInput) (wirefleet.Network, error)
	GetNetwork(ctx context.Context, name string) (wirefleet.Network, error)
	ListNetworks(ctx context.Context) ([]wirefleet.Network, error)
	UpdateNetwork(ctx context.Context, name string, u control.NetworkUpdate) (wirefleet.Network, error)
	DeleteNetwork(ctx context.Context, name string) error
	ImportNetwork(ctx context.Context, in control.ImportInput) (wirefleet.Network, error)

	CreatePeer(ctx context.Context, in control.PeerInput) (wirefleet.Peer, error)
	GetPeer(ctx context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error)
	ListPeers(ctx context.Context, f control.PeerFilter) (control.PeerPage, error)
	UpdatePeer(ctx context.Context, network string, pub wirefleet.Key, u control.PeerUpdate) (wirefleet.Peer, error)
	DeletePeer(ctx context.Context, network string, pub wirefleet.Key) error
	CreateClient(ctx context.Context, in control.ClientInput) (control.Client, error)

	CreateToken(ctx context.Context, in control.TokenInput) (wirefleet.Token, string, error)
	ListTokens(ctx context.Context) ([]wirefleet.Token, error)
	RevokeToken(ctx context.Context, id string) error
}

var _ Service = (*control.Service)(nil)
