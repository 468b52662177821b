package replication

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/problem"
)

// Source is what the handler reads: the control service (internal/control.Service)
// implements it on the store.
type Source interface {
	Snapshot(ctx context.Context) (wirefleet.Snapshot, error)
	Head(ctx context.Context) (uint64, wirefleet.Hash, error)
	// Op returns the op at seq, KindNotFound when absent or compacted.
	Op(ctx context.Context, seq uint64) (wirefleet.Op, error)
	OpsAfter(ctx context.Context, after uint64, limit int) ([]wirefleet.Op, error)
	// WaitOps returns once the head is beyond after, or ctx.Err().
	WaitOps(ctx context.Context, after uint64) error
}

// Options configure a Handler.
type Options struct {
	Source Source
	// Heartbeat is the idle interval between heartbeat lines (default 15 s).
	Heartbeat time.Duration
	// Batch bounds the ops read per store transaction while streaming (default 1000).
	Batch  int
	Logger *slog.Logger
	Now    func() time.Time
	// Streams, if set, is called with +1 when a log stream starts and -1 when it ends
	// (the "connected consumers" metric).
	Streams func(delta int, c Caller)
	// Stop, when closed, ends every running log stream (an HTTP server's Shutdown waits for
	// requests, and a stream never ends by itself).
	Stop <-chan struct{}
}

// logBaser is implemented by sources whose log may not start at seq 1 (compaction, a
// replica loaded from a snapshot): control.Service.
type logBaser interface {
	LogBase(ctx context.Context) (uint64, wirefleet.Hash, error)
}

// Handler serves the replication routes.
type Handler struct {
	src       Source
	heartbeat time.Duration
	batch     int
	log       *slog.Logger
	now       func() time.Time
	streams   func(int, Caller)
	stop      <-chan struct{}
}

// NewHandler returns a Handler.
func NewHandler(o Options) *Handler {
	h := &Handler{src: o.Source, heartbeat: o.Heartbeat, batch: o.Batch, log: o.Logger, now: o.Now, streams: o.Streams, stop: o.Stop}
	if h.heartbeat <= 0 {
		h.heartbeat = 15 * time.Second
	}
	if h.batch <= 0 {
		h.batch = 1000
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.streams == nil {
		h.streams = func(int, Caller) {}
	}
	return h
}

// Mount returns an http.Handler serving both routes, with callerOf doing authentication
// (an error from it is rendered as problem+json). The server composition normally mounts
// Snapshot and Log through the API's route table instead; Mount serves tests and
// standalone use.
func (h *Handler) Mount(callerOf func(*http.Request) (Caller, error)) http.Handler {
	mux := http.NewServeMux()
	with := func(f func(http.ResponseWriter, *http.Request, Caller)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := callerOf(r)
			if err != nil {
				h.writeError(w, err, "", 0, nil)
				return
			}
			f(w, r, c)
		}
	}
	mux.Handle("GET "+SnapshotPath, with(h.Snapshot))
	mux.Handle("GET "+LogPath, with(h.Log))
	return mux
}

// Snapshot serves GET /api/v1/replication/snapshot: the state as c may see it.
func (h *Handler) Snapshot(w http.ResponseWriter, r *http.Request, c Caller) {
	view, err := ViewOf(c)
	if err != nil {
		h.writeError(w, err, "", 0, nil)
		return
	}
	snap, err := h.src.Snapshot(r.Context())
	if err != nil {
		h.writeError(w, err, "", 0, nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(view.Snapshot(snap)); err != nil {
		h.log.DebugContext(r.Context(), "snapshot write failed", "err", err)
	}
}

// Log serves GET /api/v1/replication/log?after=SEQ&hash=H: a long-lived NDJSON stream.
func (h *Handler) Log(w http.ResponseWriter, r *http.Request, c Caller) {
	ctx := r.Context()
	view, err := ViewOf(c)
	if err != nil {
		h.writeError(w, err, "", 0, nil)
		return
	}
	after, hash, err := parsePosition(r)
	if err != nil {
		h.writeError(w, err, "", 0, nil)
		return
	}
	if reason, err := h.check(ctx, after, hash); err != nil {
		seq, head, herr := h.src.Head(ctx)
		if herr != nil {
			h.writeError(w, err, reason, 0, nil)
			return
		}
		h.writeError(w, err, reason, seq, &head)
		return
	}

	h.streams(1, c)
	defer h.streams(-1, c)
	if h.stop != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-h.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream lives longer than any write timeout
	w.Header().Set("Content-Type", ContentTypeNDJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flush := func() bool {
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		return true
	}
	if !flush() {
		return
	}
	pos := after
	for {
		ops, err := h.src.OpsAfter(ctx, pos, h.batch)
		if err != nil {
			if ctx.Err() == nil {
				h.log.WarnContext(ctx, "replication stream: read log failed", "after", pos, "err", err)
			}
			return
		}
		if len(ops) > 0 {
			if ops[0].Seq != pos+1 {
				// Compacted (or restored) under a running stream: end it; the consumer
				// reconnects and is told what happened.
				return
			}
			for _, op := range ops {
				if err := enc.Encode(Line{Op: view.Op(op)}); err != nil {
					return
				}
				pos = op.Seq
			}
			if !flush() {
				return
			}
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, h.heartbeat)
		err = h.src.WaitOps(wctx, pos)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			continue
		}
		head, _, err := h.src.Head(ctx)
		if err != nil || head < pos {
			return // the log went back beneath us: the consumer must re-check its position
		}
		if err := enc.Encode(heartbeat(head, h.now())); err != nil || !flush() {
			return
		}
	}
}

// check compares the consumer's position with the log. It returns the reason and an error
// for horizon, diverged and compacted, or a plain error when the log cannot be read.
func (h *Handler) check(ctx context.Context, after uint64, hash wirefleet.Hash) (string, error) {
	head, headHash, err := h.src.Head(ctx)
	if err != nil {
		return "", err
	}
	if after > head {
		return ReasonHorizon, wirefleet.Errorf(wirefleet.KindConflict, "the consumer is at seq %d, beyond this server's head %d: reload a snapshot", after, head)
	}
	if lb, ok := h.src.(logBaser); ok {
		base, baseHash, err := lb.LogBase(ctx)
		if err != nil {
			return "", err
		}
		switch {
		case after < base:
			return ReasonCompacted, &wirefleet.Error{Kind: wirefleet.KindNotFound, Message: "the log no longer reaches back to seq " + strconv.FormatUint(after, 10) + " (it starts after " + strconv.FormatUint(base, 10) + "): reload a snapshot"}
		case after == base && after > 0:
			// The op at the base is gone, but its hash is kept: the consumer may continue.
			if baseHash != hash {
				return ReasonDiverged, wirefleet.Errorf(wirefleet.KindConflict, "the op at seq %d has hash %s here, not %s: the history diverged, reload a snapshot", after, baseHash, hash)
			}
			return "", nil
		}
	}
	if after == 0 {
		if !hash.IsZero() {
			return ReasonDiverged, wirefleet.Errorf(wirefleet.KindConflict, "seq 0 has no hash but %s was given: reload a snapshot", hash)
		}
		if head == 0 {
			return "", nil
		}
		if _, err := h.src.Op(ctx, 1); wirefleet.KindOf(err) == wirefleet.KindNotFound {
			return ReasonCompacted, &wirefleet.Error{Kind: wirefleet.KindNotFound, Message: "the log no longer starts at seq 1: load a snapshot"}
		} else if err != nil {
			return "", err
		}
		return "", nil
	}
	var at wirefleet.Hash
	if after == head {
		at = headHash
	} else {
		op, err := h.src.Op(ctx, after)
		if wirefleet.KindOf(err) == wirefleet.KindNotFound {
			return ReasonCompacted, &wirefleet.Error{Kind: wirefleet.KindNotFound, Message: "the log no longer reaches back to seq " + strconv.FormatUint(after, 10) + ": reload a snapshot"}
		}
		if err != nil {
			return "", err
		}
		at = op.Hash
	}
	if at != hash {
		return ReasonDiverged, wirefleet.Errorf(wirefleet.KindConflict, "the op at seq %d has hash %s here, not %s: the history diverged, reload a snapshot", after, at, hash)
	}
	return "", nil
}

func parsePosition(r *http.Request) (uint64, wirefleet.Hash, error) {
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, wirefleet.Hash{}, wirefleet.Errorf(wirefleet.KindInvalid, "after %q is not a sequence number (a non-negative integer)", s)
		}
		after = n
	}
	var hash wirefleet.Hash
	if s := q.Get("hash"); s != "" {
		h, err := wirefleet.ParseHash(s)
		if err != nil {
			return 0, wirefleet.Hash{}, err
		}
		hash = h
	} else if after > 0 {
		return 0, wirefleet.Hash{}, wirefleet.Errorf(wirefleet.KindInvalid, "hash is required with after=%d: give the hash of the op at that seq so the server can detect a diverged history", after)
	}
	return after, hash, nil
}

// writeError renders err as problem+json (the API's format, plus reason and head).
func (h *Handler) writeError(w http.ResponseWriter, err error, reason string, seq uint64, head *wirefleet.Hash) {
	kind, status, detail, hidden := problem.Of(err)
	if hidden {
		h.log.Error("replication request failed", "err", err)
	}
	typ := problem.Type(kind)
	if reason != "" {
		typ = "https://wirefleet.dev/problems/replication/" + reason
		if reason == ReasonCompacted {
			status = http.StatusGone
		}
	}
	problem.Write(w, status, Problem{Type: typ, Title: http.StatusText(status), Status: status,
		Detail: detail, Kind: string(kind), Reason: reason, Seq: seq, Hash: head})
}

// WriteError renders err as problem+json with the API's kind→status table (for routes
// mounted next to the API that share its error format).
func WriteError(w http.ResponseWriter, err error) {
	(&Handler{log: slog.Default()}).writeError(w, err, "", 0, nil)
}
