package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/store"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/store/storetest"
)

const crashEnv = "WIREFLEET_SQLITE_CRASH_DB"

func crashPeer(i int) wirefleet.Peer {
	p := storetest.Peer("net", i)
	p.Addresses = []netip.Addr{netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}).Next()}
	return p
}

// TestCrashChild is the writer process of TestKill9KeepsAcknowledgedWrites; it does nothing
// unless started by it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process of TestKill9KeepsAcknowledgedWrites")
	}
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // serialises acknowledgements on stdout
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				i := w*100000 + j
				if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.InsertPeer(crashPeer(i)) }); err != nil {
					fmt.Fprintln(os.Stderr, "insert:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d\n", i) // written only after Update returned
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestKill9KeepsAcknowledgedWrites kills a process with SIGKILL in the middle of 64
// concurrent writers and checks that every write it acknowledged is in the database after
// reopening, and that the log is gap-free and verifies. (Power loss is covered by
// synchronous=FULL, pinned by TestDurabilityPragmas; it cannot be simulated here.)
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.InsertNetwork(storetest.Network("net", 0)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(60 * time.Second)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			i, _ := strconv.Atoi(n)
			acked[i] = true
		}
		if len(acked) == 2000 {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("child too slow")
		}
	}
	_ = cmd.Wait()
	if len(acked) < 2000 {
		t.Fatalf("child acknowledged only %d writes before dying", len(acked))
	}

	s, err = sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(context.Background(), func(tx store.ReadTx) error {
		ps, err := tx.ListPeers(store.PeerQuery{Network: "net"})
		if err != nil {
			return err
		}
		stored := map[wirefleet.Key]bool{}
		for _, p := range ps {
			stored[p.PublicKey] = true
		}
		for i := range acked {
			if !stored[crashPeer(i).PublicKey] {
				t.Errorf("acknowledged write %d lost", i)
			}
		}
		ops, err := tx.OpsAfter(0, 0)
		if err != nil {
			return err
		}
		if _, err := oplog.Verify(oplog.Head{}, ops); err != nil {
			t.Errorf("log after crash: %v", err)
		}
		if len(ops) != 1+len(ps) {
			t.Errorf("%d ops for %d peers: state and log disagree", len(ops), len(ps))
		}
		t.Logf("acknowledged %d, stored %d (the rest were in flight at the kill)", len(acked), len(ps))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
