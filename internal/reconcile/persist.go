package reconcile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wirefleet/wirefleet"
)

// Files in the state dir. Both hold secrets (network private keys, PSKs): mode 0600.
const (
	checkpointFile = "managed-state.json"
	journalFile    = "managed-journal.ndjson"
)

// minCheckpointEvery is the journal length (ops) beyond which a checkpoint is written; the
// real bound is max(this, 2×peers), so persisting stays O(1) amortised per op.
var minCheckpointEvery = 10000

// Load restores the desired state saved in the state dir (if any), opens the devices and
// brings them to it: the fail-open start, before the control plane is reached. It returns
// the position the follower resumes from.
func (r *Reconciler) Load(ctx context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.StateDir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(r.cfg.StateDir, 0o700); err != nil {
		return 0, fmt.Errorf("state dir: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(r.cfg.StateDir, checkpointFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("read saved state: %w", err)
	default:
		var snap wirefleet.Snapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			// A damaged checkpoint is not fatal: the follower loads a fresh snapshot.
			r.log.Error("saved state is unreadable; starting empty", "file", checkpointFile, "err", err)
		} else {
			r.resetState(snap)
		}
	}
	r.loading = true
	replayed, err := r.replayJournal(ctx)
	r.loading = false
	if err != nil {
		r.log.Error("saved journal is unreadable past some point; resuming from before it", "err", err)
	}
	peers := 0
	for _, ns := range r.networks {
		peers += len(ns.peers)
		if err := r.openDevice(ctx, ns); err != nil {
			r.log.Error("open device from saved state failed; the drift check will retry", "network", ns.value.Name, "err", err)
		}
	}
	if r.seq > 0 {
		r.log.Info("serving the saved state (fail-open) until the control plane is reached", "seq", r.seq, "journal_ops", replayed, "networks", len(r.networks), "peers", peers)
	}
	// Rewrite a compact checkpoint so the journal starts empty.
	if err := r.checkpointLocked(); err != nil {
		return r.seq, err
	}
	return r.seq, nil
}

// replayJournal applies the journal's ops that continue the checkpoint, in memory only
// (devices are not open yet). It stops at the first line that does not continue the
// chain (a torn write at a crash).
func (r *Reconciler) replayJournal(ctx context.Context) (int, error) {
	f, err := os.Open(filepath.Join(r.cfg.StateDir, journalFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		var op wirefleet.Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			return n, fmt.Errorf("journal line %d: %w", n+1, err)
		}
		if op.Seq <= r.seq {
			continue // already in the checkpoint
		}
		if op.Seq != r.seq+1 || op.PrevHash != r.hash {
			return n, fmt.Errorf("journal op %d does not follow seq %d", op.Seq, r.seq)
		}
		if err := r.applyOp(ctx, op); err != nil {
			return n, err
		}
		r.seq, r.hash = op.Seq, op.Hash
		n++
	}
	return n, sc.Err()
}

// checkpointLocked writes the whole desired state atomically and starts an empty journal.
func (r *Reconciler) checkpointLocked() error {
	snap := wirefleet.Snapshot{Seq: r.seq, Hash: r.hash, Networks: []wirefleet.NetworkValue{}, Peers: []wirefleet.PeerValue{}}
	for _, ns := range r.networks {
		snap.Networks = append(snap.Networks, ns.value)
		for _, p := range ns.peers {
			snap.Peers = append(snap.Peers, p)
		}
	}
	if err := writeFileAtomic(filepath.Join(r.cfg.StateDir, checkpointFile), func(w *bufio.Writer) error {
		return json.NewEncoder(w).Encode(snap)
	}); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if r.journal != nil {
		_ = r.journal.close()
	}
	j, err := createJournal(filepath.Join(r.cfg.StateDir, journalFile))
	if err != nil {
		return err
	}
	r.journal = j
	return nil
}

func writeFileAtomic(path string, write func(*bufio.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// journal is the append-only log of ops applied since the checkpoint. Each Apply batch is
// one write(2): it survives a crash of the process (page cache); after a power loss the
// tail may be lost, which only means resuming from an earlier seq.
type journal struct {
	f   *os.File
	n   int
	buf []byte
}

func createJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	return &journal{f: f}, nil
}

func (j *journal) append(ops []wirefleet.Op) error {
	j.buf = j.buf[:0]
	for _, op := range ops {
		b, err := json.Marshal(op)
		if err != nil {
			return err
		}
		j.buf = append(append(j.buf, b...), '\n')
	}
	if _, err := j.f.Write(j.buf); err != nil {
		return fmt.Errorf("append to journal: %w", err)
	}
	j.n += len(ops)
	return nil
}

func (j *journal) full(peers int) bool { return j.n > max(minCheckpointEvery, 2*peers) }

func (j *journal) close() error { return j.f.Close() }
