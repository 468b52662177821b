package replication

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
)

// Applier is the consumer's state: what the follower feeds.
type Applier interface {
	// Position is the last applied seq and its hash (0 and the zero hash when empty).
	Position() (uint64, wirefleet.Hash)
	// Reset replaces the whole state with snap; the position becomes snap's.
	Reset(ctx context.Context, snap wirefleet.Snapshot) error
	// Apply applies consecutive ops that continue the position, already verified. Elided
	// ops only advance the position. On error the position must not have moved past the
	// last op really applied.
	Apply(ctx context.Context, ops []wirefleet.Op) error
}

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	// URL is the control plane's base URL (https://control.example.org:8443).
	URL string
	// Token is the bearer token (role gateway or follower); never logged.
	Token   string
	Client  *http.Client // nil: a client without overall timeout (streams are long)
	Applier Applier
	Logger  *slog.Logger
	// MinBackoff and MaxBackoff bound the reconnect delay (defaults 250 ms and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout drops a stream that sent nothing (not even a heartbeat) for that long
	// (default 60 s, four server heartbeats).
	IdleTimeout time.Duration
	// Batch bounds how many buffered ops are applied in one Apply call (default 256).
	Batch int
}

// Status is the follower's state for metrics and readiness.
type Status struct {
	Connected bool
	// Synced is true once the follower has caught up with the source at least once.
	Synced bool
	// Applied is the applier's seq; Head the source's last known head.
	Applied, Head uint64
	// Snapshots counts snapshot loads, Reloads those caused by horizon, diverged or
	// compacted answers or a chain that failed verification; Ops counts ops applied from
	// the stream (elided ones included).
	Snapshots, Reloads, Ops uint64
	LastError               string
}

// Follower keeps an Applier in step with a control plane.
type Follower struct {
	cfg    FollowerConfig
	client *http.Client
	log    *slog.Logger

	mu sync.Mutex // guards st
	st Status
}

// NewFollower returns a follower; Run starts it.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "control URL %q is not an http(s) URL like https://control.example.org:8443", cfg.URL)
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.Applier == nil {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "follower needs an applier")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	f := &Follower{cfg: cfg, client: cfg.Client, log: cfg.Logger}
	if f.client == nil {
		f.client = &http.Client{}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.st.Applied, _ = cfg.Applier.Position()
	return f, nil
}

// Status returns a copy of the follower's status.
func (f *Follower) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *Follower) update(fn func(*Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

// reloadCooldown: a reload requested sooner than this after the previous one waits for
// the backoff first.
const reloadCooldown = 10 * time.Second

// errReload asks Run to load a snapshot before streaming again.
type errReload struct{ reason, detail string }

func (e *errReload) Error() string { return e.reason + ": " + e.detail }

// Run follows until ctx ends (then it returns nil). Network and server errors are retried
// with capped exponential backoff and jitter, forever.
func (f *Follower) Run(ctx context.Context) error {
	backoff := f.cfg.MinBackoff
	var lastReload time.Time
	needSnapshot := false
	if seq, h := f.cfg.Applier.Position(); seq == 0 && h.IsZero() {
		needSnapshot = true // a new consumer starts from a snapshot, never a full replay
	}
	for ctx.Err() == nil {
		var err error
		if needSnapshot {
			err = f.loadSnapshot(ctx)
			if err == nil {
				needSnapshot = false
			}
		}
		progressed := false
		if err == nil {
			progressed, err = f.stream(ctx)
		}
		f.update(func(s *Status) { s.Connected = false })
		if ctx.Err() != nil {
			break
		}
		var rl *errReload
		if errors.As(err, &rl) {
			f.log.Warn("replication: reloading a snapshot", "reason", rl.reason, "detail", rl.detail)
			f.update(func(s *Status) { s.Reloads++; s.LastError = rl.Error() })
			needSnapshot = true
			// A source that keeps refusing right after a fresh snapshot (a broken or
			// flapping primary) must not be hammered with snapshot downloads.
			if time.Since(lastReload) < reloadCooldown {
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, f.cfg.MaxBackoff)
			}
			lastReload = time.Now()
			continue
		}
		if progressed {
			backoff = f.cfg.MinBackoff
		}
		if err != nil {
			f.update(func(s *Status) { s.LastError = err.Error() })
			f.log.Warn("replication: disconnected, retrying", "err", err, "in", backoff)
		}
		// Jitter in [backoff/2, backoff) spreads a fleet's reconnects after an outage.
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		backoff = min(backoff*2, f.cfg.MaxBackoff)
	}
	return nil
}

func (f *Follower) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+f.cfg.Token)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	p := decodeProblem(b)
	switch {
	case p.Reason == ReasonHorizon || p.Reason == ReasonDiverged || p.Reason == ReasonCompacted:
		return nil, &errReload{reason: p.Reason, detail: p.Detail}
	case resp.StatusCode == http.StatusGone:
		return nil, &errReload{reason: ReasonCompacted, detail: string(b)}
	}
	detail := p.Detail
	if detail == "" {
		detail = strings.TrimSpace(string(b))
	}
	return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, detail)
}

func (f *Follower) loadSnapshot(ctx context.Context) error {
	resp, err := f.get(ctx, SnapshotPath)
	if err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	defer resp.Body.Close()
	var snap wirefleet.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return fmt.Errorf("load snapshot: decode: %w", err)
	}
	if err := f.cfg.Applier.Reset(ctx, snap); err != nil {
		return fmt.Errorf("apply snapshot at seq %d: %w", snap.Seq, err)
	}
	f.log.Info("replication: snapshot loaded", "seq", snap.Seq, "networks", len(snap.Networks), "peers", len(snap.Peers))
	f.update(func(s *Status) {
		s.Snapshots++
		s.Applied = snap.Seq
		s.Head = max(s.Head, snap.Seq)
	})
	return nil
}

// stream tails the log from the applier's position until an error; progressed reports
// whether the stream was established (so backoff can reset).
func (f *Follower) stream(ctx context.Context) (progressed bool, err error) {
	seq, hash := f.cfg.Applier.Position()
	q := url.Values{"after": {strconv.FormatUint(seq, 10)}}
	if seq > 0 {
		q.Set("hash", hash.String())
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := f.get(sctx, LogPath+"?"+q.Encode())
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	f.log.Info("replication: streaming", "after", seq)
	f.update(func(s *Status) { s.Connected = true })

	// A dead connection shows as silence: no op and no heartbeat for IdleTimeout.
	idle := time.AfterFunc(f.cfg.IdleTimeout, cancel)
	defer idle.Stop()

	cur := oplog.Head{Seq: seq, Hash: hash}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var batch []wirefleet.Op
	for {
		line, rerr := br.ReadBytes('\n')
		idle.Reset(f.cfg.IdleTimeout)
		if len(strings.TrimSpace(string(line))) > 0 {
			var l Line
			if err := json.Unmarshal(line, &l); err != nil {
				return true, fmt.Errorf("replication stream: bad line: %w", err)
			}
			if l.Type == TypeHeartbeat {
				if l.Head < cur.Seq {
					return true, &errReload{reason: ReasonHorizon, detail: fmt.Sprintf("source head %d is behind our seq %d", l.Head, cur.Seq)}
				}
				f.update(func(s *Status) { s.Head = l.Head; s.Synced = s.Synced || l.Head == cur.Seq })
			} else {
				if err := verifyNext(cur, l.Op); err != nil {
					return true, &errReload{reason: ReasonDiverged, detail: err.Error()}
				}
				cur = oplog.Head{Seq: l.Seq, Hash: l.Hash}
				batch = append(batch, l.Op)
			}
		}
		// Apply when the connection has nothing more buffered (we are caught up with what
		// arrived) or the batch is full: one device write per op either way, but fewer
		// state-journal writes under a burst.
		if len(batch) > 0 && (br.Buffered() == 0 || len(batch) >= f.cfg.Batch || rerr != nil) {
			if err := f.cfg.Applier.Apply(ctx, batch); err != nil {
				return true, fmt.Errorf("apply ops %d..%d: %w", batch[0].Seq, batch[len(batch)-1].Seq, err)
			}
			last := batch[len(batch)-1].Seq
			n := uint64(len(batch))
			f.update(func(s *Status) {
				s.Applied = last
				s.Ops += n
				s.Head = max(s.Head, last)
				s.Synced = s.Synced || (br.Buffered() == 0 && s.Head == last)
			})
			batch = batch[:0]
		}
		if rerr != nil {
			if rerr == io.EOF {
				return true, errors.New("replication stream ended")
			}
			return true, fmt.Errorf("replication stream: %w", rerr)
		}
	}
}

// verifyNext checks that op continues the chain at cur. Elided ops can only be checked for
// their link (their content is hidden from us); visible ops also for their own hash.
func verifyNext(cur oplog.Head, op wirefleet.Op) error {
	if op.Seq != cur.Seq+1 {
		return fmt.Errorf("op log gap: seq %d follows %d", op.Seq, cur.Seq)
	}
	if op.PrevHash != cur.Hash {
		return fmt.Errorf("op %d: prev_hash %s is not the hash of op %d (%s)", op.Seq, op.PrevHash, cur.Seq, cur.Hash)
	}
	if op.Type == TypeElided {
		return nil
	}
	return oplog.Check(op)
}
