package oplog

import (
	"context"
	"sync"
)

// Notifier broadcasts the committed head sequence to any number of waiters (followers
// streaming the log). The writer calls Publish after each commit; waiters block in Wait.
type Notifier struct {
	mu  sync.Mutex    // guards seq and ch
	seq uint64        // last published sequence
	ch  chan struct{} // closed and replaced on every Publish that advances seq
}

// NewNotifier starts at seq.
func NewNotifier(seq uint64) *Notifier { return &Notifier{seq: seq, ch: make(chan struct{})} }

// Publish records a new head and wakes all waiters if it advanced. A lower seq (a restore)
// is recorded too so that Seq reports the truth.
func (n *Notifier) Publish(seq uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if seq == n.seq {
		return
	}
	n.seq = seq
	close(n.ch)
	n.ch = make(chan struct{})
}

// Seq returns the last published sequence.
func (n *Notifier) Seq() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seq
}

// Wait returns nil once the head is beyond after, or ctx.Err().
func (n *Notifier) Wait(ctx context.Context, after uint64) error {
	for {
		n.mu.Lock()
		seq, ch := n.seq, n.ch
		n.mu.Unlock()
		if seq > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
