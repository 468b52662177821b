package replication

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/wirefleet/wirefleet"
)

// Compactable is the log a Compactor trims: control.Service implements it on the store.
type Compactable interface {
	Head(ctx context.Context) (uint64, wirefleet.Hash, error)
	LogBase(ctx context.Context) (uint64, wirefleet.Hash, error)
	Op(ctx context.Context, seq uint64) (wirefleet.Op, error)
	// CompactLog deletes the ops up to and including through (local, no op logged).
	CompactLog(ctx context.Context, through uint64) error
}

// Compactor deletes old ops by age and count. The state itself is never lost (it is in
// the tables; a snapshot carries it); only consumers further behind than what is kept get
// "410 compacted" and reload a snapshot.
type Compactor struct {
	Log Compactable
	// KeepOps keeps at least the last KeepOps ops (0: no limit by count).
	KeepOps uint64
	// KeepAge keeps ops younger than KeepAge (0: no limit by age). With both set, an op is
	// deleted when it is beyond either limit.
	KeepAge time.Duration
	// Every is the period of Run (default 10 min).
	Every  time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Through returns the seq up to which the log may be compacted now (the current base when
// there is nothing to do).
func (c *Compactor) Through(ctx context.Context) (uint64, error) {
	head, _, err := c.Log.Head(ctx)
	if err != nil {
		return 0, err
	}
	base, _, err := c.Log.LogBase(ctx)
	if err != nil {
		return 0, err
	}
	through := base
	if c.KeepOps > 0 && head > c.KeepOps && head-c.KeepOps > through {
		through = head - c.KeepOps
	}
	if c.KeepAge > 0 {
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		cutoff := now().Add(-c.KeepAge)
		// Ops are sealed in order, so their times are (nearly) sorted: binary search for
		// the last op older than the cutoff, O(log n) point reads.
		var searchErr error
		n := int(head - base)
		i := sort.Search(n, func(i int) bool {
			op, err := c.Log.Op(ctx, base+1+uint64(i))
			if err != nil {
				searchErr = err
				return true
			}
			return !op.Time.Before(cutoff)
		})
		if searchErr != nil {
			return 0, searchErr
		}
		if old := base + uint64(i); old > through {
			through = old
		}
	}
	return through, nil
}

// Compact trims the log once; it returns how many ops were deleted.
func (c *Compactor) Compact(ctx context.Context) (uint64, error) {
	base, _, err := c.Log.LogBase(ctx)
	if err != nil {
		return 0, err
	}
	through, err := c.Through(ctx)
	if err != nil || through <= base {
		return 0, err
	}
	if err := c.Log.CompactLog(ctx, through); err != nil {
		return 0, err
	}
	return through - base, nil
}

// Run compacts every c.Every until ctx ends.
func (c *Compactor) Run(ctx context.Context) error {
	every := c.Every
	if every <= 0 {
		every = 10 * time.Minute
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := c.Compact(ctx); err != nil && ctx.Err() == nil {
			log.Error("log compaction failed", "err", err)
		} else if n > 0 {
			log.Info("log compacted", "ops_deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
