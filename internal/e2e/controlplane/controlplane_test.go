// Package controlplane holds the process-level tests of `wirefleet server`: the real binary
// on a loopback port with a data directory, driven over HTTP. They need no privileges.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/apiclient"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/server"
	"github.com/wirefleet/wirefleet/internal/store"
)

var addrRE = regexp.MustCompile(`msg="control plane listening" addr=(\S+)`)

// startServer runs `wirefleet server` on a free loopback port and returns it with its URL.
func startServer(t testing.TB, bin, dataDir string) (*e2e.Process, string) {
	t.Helper()
	p := e2e.Start(t, nil, nil, bin, "server", "-data", dataDir, "-listen", "127.0.0.1:0", "-no-gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, "control plane listening"); err != nil {
		t.Fatal(err)
	}
	m := addrRE.FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("no listen address in the output:\n%s", p.Output())
	}
	return p, "http://" + m[1]
}

// bootstrapToken runs the offline `wirefleet token create -data DIR -role admin`.
func bootstrapToken(t testing.TB, bin, dataDir string) string {
	t.Helper()
	out, err := exec.Command(bin, "token", "create", "-data", dataDir, "-role", "admin").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	secret := strings.TrimSpace(string(out))
	if !strings.HasPrefix(secret, wirefleet.TokenSecretPrefix) || strings.Contains(secret, "\n") {
		t.Fatalf("token create printed %q, want only the secret", out)
	}
	return secret
}

// TestKill9Durability: hundreds of concurrent peer creates, kill -9 of the server in the
// middle, restart: every create that got a 2xx is there, and the op log is gap-free with a
// verifying hash chain.
func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test; runs in the full pass")
	}
	bin := e2e.Binary(t)
	dataDir := t.TempDir()
	secret := bootstrapToken(t, bin, dataDir)
	proc, url := startServer(t, bin, dataDir)
	c, err := apiclient.New(url, apiclient.Options{Token: secret, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, wire.NetworkCreate{Name: "durable", IPv4: "198.18.0.1/15", IPv6: "2001:db8:d::1/64"}); err != nil {
		t.Fatal(err)
	}

	const workers, killAfter = 64, 400
	var (
		mu    sync.Mutex // guards acked
		acked []wire.Peer
		kill  = make(chan struct{})
		once  sync.Once
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, err := wirefleet.GeneratePrivateKey()
				if err != nil {
					t.Error(err)
					return
				}
				p, err := c.CreatePeer(ctx, "durable", wire.PeerCreate{PublicKey: k.PublicKey(), Name: "d"})
				if err != nil {
					// The server died under us: expected, stop this worker. Anything
					// else before the kill is a failure.
					select {
					case <-kill:
						return
					default:
					}
					if wirefleet.KindOf(err) == wirefleet.KindUnavailable {
						return
					}
					t.Errorf("create before the kill: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, p)
				n := len(acked)
				mu.Unlock()
				if n == killAfter {
					once.Do(func() {
						close(kill)
						proc.Kill() // SIGKILL while the other 63 workers are mid-request
					})
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-kill:
	default:
		t.Fatalf("the server was never killed (%d acknowledged creates)", len(acked))
	}
	t.Logf("%d creates acknowledged before and around the kill -9", len(acked))

	proc2, url2 := startServer(t, bin, dataDir)
	c2, err := apiclient.New(url2, apiclient.Options{Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	peers, err := c2.ListAllPeers(ctx, "durable", apiclient.PeerQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	stored := make(map[wirefleet.Key]wire.Peer, len(peers))
	byAddr := map[string]wirefleet.Key{}
	for _, p := range peers {
		stored[p.PublicKey] = p
		for _, a := range p.Addresses {
			if prev, dup := byAddr[a.String()]; dup {
				t.Errorf("address %s held by %s and %s", a, prev, p.PublicKey)
			}
			byAddr[a.String()] = p.PublicKey
		}
	}
	for _, p := range acked {
		got, ok := stored[p.PublicKey]
		if !ok {
			t.Errorf("acknowledged peer %s is missing after the restart", p.PublicKey)
			continue
		}
		if fmt.Sprint(got.Addresses) != fmt.Sprint(p.Addresses) {
			t.Errorf("peer %s: addresses %v after restart, %v acknowledged", p.PublicKey, got.Addresses, p.Addresses)
		}
	}
	t.Logf("%d peers stored (%d acknowledged; the rest were in flight at the kill)", len(peers), len(acked))

	// The log: stop the server (it holds the data directory) and read the store directly.
	if err := proc2.Stop(10 * time.Second); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("stop: %v", err)
		}
		t.Fatalf("server exited with %v on SIGTERM:\n%s", err, proc2.Output())
	}
	st, closeStore, err := server.OpenStore(ctx, dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	var ops []wirefleet.Op
	var head uint64
	var headHash wirefleet.Hash
	if err := st.View(ctx, func(tx store.ReadTx) error {
		var err error
		if head, headHash, err = tx.Head(); err != nil {
			return err
		}
		ops, err = tx.OpsAfter(0, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	h, err := oplog.Verify(oplog.Head{}, ops)
	if err != nil {
		t.Fatalf("op log does not verify: %v", err)
	}
	if h.Seq != head || h.Hash != headHash || uint64(len(ops)) != head {
		t.Fatalf("verified head %d/%s, store head %d/%s, %d ops: the log has gaps", h.Seq, h.Hash, head, headHash, len(ops))
	}
	puts := map[string]bool{}
	for _, op := range ops {
		if op.Type == wirefleet.OpPeerPut {
			puts[op.Key] = true
		}
	}
	for _, p := range peers {
		if !puts[wirefleet.PeerKey("durable", p.PublicKey)] {
			t.Errorf("peer %s is stored without its peer.put op", p.PublicKey)
		}
	}
	t.Logf("op log: %d ops, gap-free, hash chain verified up to %s", head, headHash)
}
