package vpndaemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// failing is a device whose writes and reads fail with err.
type failing struct {
	*device
	applyErr, readErr error
}

func (f failing) ApplyPeers(context.Context, []wgdev.Peer, []wirefleet.Key) error { return f.applyErr }
func (f failing) Peers(ctx context.Context) ([]wgdev.PeerStatus, error) {
	if f.readErr != nil {
		return nil, f.readErr
	}
	return f.device.Peers(ctx)
}

func TestDeviceErrors(t *testing.T) {
	invalid := wirefleet.Errorf(wirefleet.KindInvalid, "allowed IP 192.0.2.1/32 is outside the managed prefixes")
	conflict := wirefleet.Errorf(wirefleet.KindConflict, "peer exists outside the managed prefixes")
	unavailable := wirefleet.Errorf(wirefleet.KindUnavailable, "device closed")
	other := errors.New("netlink: boom")
	add := func(f *fixture) response {
		return f.do(t, http.MethodPost, "/w/add_peer", portalForm(keyA, "198.51.100.9/32"))
	}
	remove := func(f *fixture) response {
		return f.do(t, http.MethodPost, "/w/remove_peer", "public_key="+strings.ReplaceAll(keyA, "+", "%2B"))
	}
	list := func(f *fixture) response { return f.do(t, http.MethodGet, "/w/peer_list", "") }
	tests := []struct {
		name              string
		applyErr, readErr error
		call              func(*fixture) response
		wantStatus        int
		want              string
	}{
		{"add refused", invalid, nil, add, 400, "refused by the device: allowed IP 192.0.2.1/32 is outside the managed prefixes"},
		{"add not ours", conflict, nil, add, 409, "conflict: peer exists outside the managed prefixes"},
		{"remove not ours", conflict, nil, remove, 409, "conflict: peer exists outside the managed prefixes"},
		{"add device down", unavailable, nil, add, 503, "internal error: Service Unavailable; see the gateway log"},
		{"add other", other, nil, add, 500, "internal error: Internal Server Error; see the gateway log"},
		{"add device timeout", fmt.Errorf("set: %w", context.DeadlineExceeded), nil, add, 503, "internal error: Service Unavailable; see the gateway log"},
		{"remove read fails", nil, other, remove, 500, "internal error: Internal Server Error; see the gateway log"},
		// A read error is never the client's fault, whatever its kind.
		{"list read invalid", nil, invalid, list, 500, "internal error: Internal Server Error; see the gateway log"},
		{"list read down", nil, unavailable, list, 503, "internal error: Service Unavailable; see the gateway log"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if err := f.dev.ApplyPeers(context.Background(), []wgdev.Peer{{PublicKey: wirefleet.MustParseKey(keyA)}}, nil); err != nil {
				t.Fatal(err)
			}
			f.h.dev = failing{f.dev, tc.applyErr, tc.readErr}
			r := tc.call(f)
			if r.status != tc.wantStatus || r.body != tc.want+"\n" {
				t.Errorf("got %d %q, want %d %q", r.status, r.body, tc.wantStatus, tc.want)
			}
			// The liveness probe does not depend on the peer list.
			if r := f.do(t, http.MethodGet, "/i/node", ""); r.status != 200 {
				t.Errorf("/i/node with a failing device: %d %s", r.status, r.body)
			}
		})
	}
}

// TestBusyAnswers503 holds the write lock past the device budget: the waiting request is
// answered 503 within the budget and has not touched the device.
func TestBusyAnswers503(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.DeviceTimeout = 50 * time.Millisecond })
	f.h.writes <- struct{}{} // another change in progress
	start := time.Now()
	r := f.do(t, http.MethodPost, "/w/add_peer", portalForm(keyA, "198.51.100.9/32"))
	<-f.h.writes
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("status %d %q, want 503", r.status, r.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("answered after %v, want about the 50 ms budget", took)
	}
	if n := len(f.peers(t)); n != 0 || f.dev.Applies() != 0 {
		t.Errorf("device touched by a request that timed out waiting: %d peers, %d applies", n, f.dev.Applies())
	}
}
