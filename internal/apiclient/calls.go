package apiclient

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
)

func networkPath(name string) string { return "/api/v1/networks/" + url.PathEscape(name) }

// peerPath escapes the key's '/' and '+' so that it stays one path segment.
func peerPath(network string, k wirefleet.Key) string {
	return networkPath(network) + "/peers/" + url.PathEscape(k.String())
}

// ListNetworks lists the networks the caller may see.
func (c *Client) ListNetworks(ctx context.Context) ([]wire.Network, error) {
	var out wire.NetworkList
	_, err := c.do(ctx, request{method: "GET", path: "/api/v1/networks"}, &out)
	return out.Items, err
}

// CreateNetwork creates a network.
func (c *Client) CreateNetwork(ctx context.Context, in wire.NetworkCreate) (wire.Network, error) {
	var out wire.Network
	_, err := c.do(ctx, request{method: "POST", path: "/api/v1/networks", body: in}, &out)
	return out, err
}

// GetNetwork shows a network.
func (c *Client) GetNetwork(ctx context.Context, name string) (wire.Network, error) {
	var out wire.Network
	_, err := c.do(ctx, request{method: "GET", path: networkPath(name)}, &out)
	return out, err
}

// DeleteNetwork deletes a network and its peers.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	_, err := c.do(ctx, request{method: "DELETE", path: networkPath(name)}, nil)
	return err
}

// ImportNetwork imports a wg-quick config as a new network in one transaction.
func (c *Client) ImportNetwork(ctx context.Context, in wire.NetworkImport) (wire.NetworkImported, error) {
	var out wire.NetworkImported
	_, err := c.do(ctx, request{method: "POST", path: "/api/v1/networks/import", body: in}, &out)
	return out, err
}

// PeerQuery filters ListPeers.
type PeerQuery struct {
	Enabled, Expired *bool
	NamePrefix       string
	Limit            int
	Cursor           string
}

// ListPeers returns one page of a network's peers.
func (c *Client) ListPeers(ctx context.Context, network string, q PeerQuery) (wire.PeerList, error) {
	v := url.Values{}
	if q.Enabled != nil {
		v.Set("enabled", strconv.FormatBool(*q.Enabled))
	}
	if q.Expired != nil {
		v.Set("expired", strconv.FormatBool(*q.Expired))
	}
	if q.NamePrefix != "" {
		v.Set("name_prefix", q.NamePrefix)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out wire.PeerList
	_, err := c.do(ctx, request{method: "GET", path: networkPath(network) + "/peers", query: v}, &out)
	return out, err
}

// ListAllPeers follows the cursor until the last page.
func (c *Client) ListAllPeers(ctx context.Context, network string, q PeerQuery) ([]wire.Peer, error) {
	var all []wire.Peer
	for {
		page, err := c.ListPeers(ctx, network, q)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		q.Cursor = page.NextCursor
	}
}

// CreatePeer adds a peer with its own public key.
func (c *Client) CreatePeer(ctx context.Context, network string, in wire.PeerCreate) (wire.Peer, error) {
	var out wire.Peer
	_, err := c.do(ctx, request{method: "POST", path: networkPath(network) + "/peers", body: in}, &out)
	return out, err
}

// GetPeer shows a peer.
func (c *Client) GetPeer(ctx context.Context, network string, k wirefleet.Key) (wire.Peer, error) {
	var out wire.Peer
	_, err := c.do(ctx, request{method: "GET", path: peerPath(network, k)}, &out)
	return out, err
}

// UpdatePeer changes a peer.
func (c *Client) UpdatePeer(ctx context.Context, network string, k wirefleet.Key, u wire.PeerUpdate) (wire.Peer, error) {
	var out wire.Peer
	_, err := c.do(ctx, request{method: "PATCH", path: peerPath(network, k), body: u}, &out)
	return out, err
}

// DeletePeer removes a peer.
func (c *Client) DeletePeer(ctx context.Context, network string, k wirefleet.Key) error {
	_, err := c.do(ctx, request{method: "DELETE", path: peerPath(network, k)}, nil)
	return err
}

// SetPeerEnabled enables or disables a peer.
func (c *Client) SetPeerEnabled(ctx context.Context, network string, k wirefleet.Key, enabled bool) (wire.Peer, error) {
	action := "/disable"
	if enabled {
		action = "/enable"
	}
	var out wire.Peer
	_, err := c.do(ctx, request{method: "POST", path: peerPath(network, k) + action}, &out)
	return out, err
}

// CreateClient creates a client with a server-generated key pair and returns its config.
func (c *Client) CreateClient(ctx context.Context, network string, in wire.ClientCreate) (wire.Client, error) {
	var out wire.Client
	_, err := c.do(ctx, request{method: "POST", path: networkPath(network) + "/clients", body: in}, &out)
	return out, err
}

// CreateClientPNG is CreateClient answering with the config as a QR code PNG.
func (c *Client) CreateClientPNG(ctx context.Context, network string, in wire.ClientCreate) ([]byte, error) {
	return c.do(ctx, request{method: "POST", path: networkPath(network) + "/clients", body: in, accept: "image/png"}, nil)
}

// CreateToken creates a token; the answer holds the secret, shown once.
func (c *Client) CreateToken(ctx context.Context, in wire.TokenCreate) (wire.TokenCreated, error) {
	var out wire.TokenCreated
	_, err := c.do(ctx, request{method: "POST", path: "/api/v1/tokens", body: in}, &out)
	return out, err
}

// ListTokens lists tokens (no secrets).
func (c *Client) ListTokens(ctx context.Context) ([]wirefleet.Token, error) {
	var out wire.TokenList
	_, err := c.do(ctx, request{method: "GET", path: "/api/v1/tokens"}, &out)
	return out.Items, err
}

// RevokeToken deletes a token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: "DELETE", path: "/api/v1/tokens/" + url.PathEscape(id)}, nil)
	return err
}

// Ready checks /readyz.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, request{method: "GET", path: "/readyz"}, nil)
	return err
}

// ProgressFunc reports how many request bytes were sent of total.
type ProgressFunc func(sent, total int64)

// ImportNetworkProgress is ImportNetwork reporting the upload progress (large estates).
func (c *Client) ImportNetworkProgress(ctx context.Context, in wire.NetworkImport, progress ProgressFunc) (wire.NetworkImported, error) {
	var out wire.NetworkImported
	_, err := c.do(ctx, request{method: "POST", path: "/api/v1/networks/import", body: in, progress: progress}, &out)
	return out, err
}

// SessionQuery filters ListSessions; zero fields do not filter.
type SessionQuery struct {
	Network   string
	PublicKey *wirefleet.Key
	// State is "open", "closed" or "".
	State string
	// Protocol is "wireguard", "openvpn" or "".
	Protocol string
	// Since keeps sessions active at or after it.
	Since time.Time
	Limit int
}

// ListSessions returns the sessions the caller may see, newest first.
func (c *Client) ListSessions(ctx context.Context, q SessionQuery) ([]wire.Session, error) {
	v := url.Values{}
	if q.Network != "" {
		v.Set("network", q.Network)
	}
	if q.PublicKey != nil {
		v.Set("public_key", q.PublicKey.String())
	}
	if q.State != "" {
		v.Set("state", q.State)
	}
	if q.Protocol != "" {
		v.Set("protocol", q.Protocol)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out wire.SessionList
	_, err := c.do(ctx, request{method: "GET", path: "/api/v1/sessions", query: v}, &out)
	return out.Sessions, err
}
