package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/store"
)

// request is one Update call waiting for the writer.
type request struct {
	ctx  context.Context
	fn   func(store.Tx) error
	err  error
	done chan struct{}
	// hooks registered by fn (run by the writer after the batch's outcome is known)
	onCommit, onRollback []func()
}

// writer is the state of the single writer goroutine.
type writer struct {
	conn *sql.Conn
	head oplog.Head // last committed (or, inside a batch, last appended) op
	st   stmts
}

func newWriter(ctx context.Context, s *Store) (*writer, error) {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("writer connection: %w", err)
	}
	w := &writer{conn: conn}
	if err := w.st.prepare(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	if err := w.loadHead(ctx); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *writer) loadHead(ctx context.Context) error {
	r := &reader{ctx: ctx, q: w.conn}
	seq, h, err := r.Head()
	if err != nil {
		return err
	}
	w.head = oplog.Head{Seq: seq, Hash: h}
	return nil
}

// exec runs a transaction-control statement, prepared once: they run several times per
// call on the hot path.
func (w *writer) exec(ctx context.Context, q string) (sql.Result, error) {
	st, err := w.st.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx)
}

func (w *writer) close() error {
	w.st.close()
	return w.conn.Close()
}

// Update implements store.Store: it queues fn for the writer and waits for the outcome.
// Once queued the call always waits for the writer's verdict, so that its result (and its
// rollback hooks) are authoritative: a cancelled ctx only skips fn if it has not started.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, fn: fn, done: make(chan struct{})}
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return wirefleet.Errorf(wirefleet.KindUnavailable, "store is closed")
	}
	// Sending under closeMu: the writer drains the channel before exiting, so a queued
	// request is always answered.
	select {
	case s.reqs <- r:
		s.closeMu.Unlock()
	case <-ctx.Done():
		s.closeMu.Unlock()
		return ctx.Err()
	}
	<-r.done
	return r.err
}

func (s *Store) runWriter() {
	defer close(s.done)
	batch := make([]*request, 0, s.maxBatch)
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.quit:
			// Answer whatever is still queued, then stop.
			for {
				select {
				case r := <-s.reqs:
					s.runBatch([]*request{r})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		// Group commit: everything that queued up while the previous batch was fsyncing.
	drain:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.runBatch(batch)
	}
}

func (s *Store) runBatch(batch []*request) {
	ctx := context.Background() // each request's ctx is checked before its fn runs
	w := s.w
	fail := func(err error) {
		for _, r := range batch {
			if r.err == nil {
				r.err = err
				runHooks(r.onRollback)
			}
			close(r.done)
		}
	}
	if _, err := w.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		fail(unavailable("begin", err))
		return
	}
	startHead := w.head
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if _, err := w.exec(ctx, "SAVEPOINT call"); err != nil {
			s.abort(startHead)
			fail(unavailable("savepoint", err))
			return
		}
		before := w.head
		tx := &writeTx{reader: reader{ctx: ctx, q: w.conn, st: &w.st}, s: s, req: r}
		err := call(r.fn, tx)
		tx.done = true
		if err != nil {
			r.err = err
			w.head = before
			_, rerr := w.exec(ctx, "ROLLBACK TO call")
			if rerr == nil {
				_, rerr = w.exec(ctx, "RELEASE call")
			}
			if rerr != nil {
				s.abort(startHead)
				fail(unavailable("rollback to savepoint", rerr))
				return
			}
			runHooks(r.onRollback)
			r.onCommit, r.onRollback = nil, nil
			continue
		}
		if _, err := w.exec(ctx, "RELEASE call"); err != nil {
			s.abort(startHead)
			fail(unavailable("release savepoint", err))
			return
		}
	}
	if _, err := w.exec(ctx, "COMMIT"); err != nil {
		s.abort(startHead)
		fail(unavailable("commit", err))
		return
	}
	s.batches.Add(1)
	s.calls.Add(uint64(len(batch)))
	for _, r := range batch {
		if r.err == nil {
			runHooks(r.onCommit)
		}
		close(r.done)
	}
	if w.head != startHead {
		s.notify.Publish(w.head.Seq)
	}
}

// abort rolls the open transaction back after a failure of the database itself and
// restores the in-memory head from the database (falling back to the batch's start).
func (s *Store) abort(start oplog.Head) {
	ctx := context.Background()
	if _, err := s.w.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		s.log.Error("sqlite: rollback after failure", "err", err)
	}
	s.w.head = start
	if err := s.w.loadHead(ctx); err != nil {
		s.log.Error("sqlite: reload log head", "err", err)
	}
}

// call runs fn, turning a panic into an internal error so the batch survives.
func call(fn func(store.Tx) error, tx store.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &wirefleet.Error{Kind: wirefleet.KindInternal, Message: fmt.Sprintf("panic in store update: %v\n%s", p, debug.Stack())}
		}
	}()
	return fn(tx)
}

func runHooks(hs []func()) {
	for _, h := range hs {
		h()
	}
}
