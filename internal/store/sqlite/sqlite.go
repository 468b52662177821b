// Package sqlite is the default store backend: one SQLite file (modernc.org/sqlite, no
// cgo) holding networks, peers, tokens and the operation log.
//
// Durability: WAL mode with synchronous=FULL (OFF only for a file thrown away at exit,
// Options.Ephemeral). In WAL mode FULL fsyncs the WAL at every
// commit, so a write acknowledged by Update survives kill -9 *and* power loss. (NORMAL would
// only fsync at checkpoints: safe against a process crash but a power loss could drop the
// last commits, which breaks "every 2xx is durable".) The cost of the fsync is shared by
// group commit: a single writer goroutine takes every pending Update call, runs each in its
// own SAVEPOINT inside one transaction (a failing call rolls back only itself), and commits
// once: one fsync per batch, however many API requests it carries.
//
// Reads use a separate pool of connections (query_only), each View a consistent WAL
// snapshot that never blocks the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Now stamps op times; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// MaxBatch bounds how many Update calls share one transaction (default 256).
	MaxBatch int
	// Readers is the size of the read pool (default 4).
	Readers int
	// Ephemeral says the file is thrown away when the process ends (autowg's compatibility
	// mode without -data): commits are not fsynced (synchronous=OFF), since durability
	// would buy nothing and cost every registration an fsync wait.
	Ephemeral bool
}

// Store is the SQLite backend of store.Store.
type Store struct {
	path   string
	now    func() time.Time
	log    *slog.Logger
	wdb    *sql.DB // one connection, owned by the writer goroutine
	rdb    *sql.DB // read pool
	notify *oplog.Notifier

	reqs     chan *request
	maxBatch int
	quit     chan struct{}
	done     chan struct{}
	closeMu  sync.Mutex // guards closed
	closed   bool
	w        *writer // the writer's state; touched only by the writer goroutine

	batches, calls atomic.Uint64 // committed transactions and the Update calls they carried
}

// Stats reports group-commit activity since Open.
type Stats struct {
	Batches uint64 // transactions committed (one fsync each)
	Calls   uint64 // Update calls they carried
}

// Stats returns the group-commit counters (for metrics and benchmarks).
func (s *Store) Stats() Stats { return Stats{Batches: s.batches.Load(), Calls: s.calls.Load()} }

var _ store.Store = (*Store)(nil)

func dsn(path string, readOnly, ephemeral bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	if !readOnly {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	if ephemeral {
		q.Add("_pragma", "synchronous(OFF)")
	} else {
		q.Add("_pragma", "synchronous(FULL)")
	}
	q.Add("_pragma", "foreign_keys(0)")
	q.Add("_pragma", "cache_size(-32000)")
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path, applies pending migrations and
// starts the writer. Close stops it.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	s := &Store{path: path, now: o.Now, log: o.Logger, maxBatch: o.MaxBatch}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBatch <= 0 {
		s.maxBatch = 256
	}
	readers := o.Readers
	if readers <= 0 {
		readers = 4
	}
	wdb, err := sql.Open("sqlite", dsn(path, false, o.Ephemeral))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	s.wdb = wdb
	if err := migrate(ctx, wdb); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", dsn(path, true, o.Ephemeral))
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(readers)
	rdb.SetMaxIdleConns(readers)
	rdb.SetConnMaxIdleTime(0)
	s.rdb = rdb
	w, err := newWriter(ctx, s)
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, err
	}
	s.w = w
	s.notify = oplog.NewNotifier(w.head.Seq)
	s.reqs = make(chan *request, 1024)
	s.quit = make(chan struct{})
	s.done = make(chan struct{})
	go s.runWriter()
	return s, nil
}

// Close stops the writer after the calls already queued and closes the database.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.closeMu.Unlock()
	<-s.done
	return errors.Join(s.w.close(), s.rdb.Close(), s.wdb.Close())
}

// View runs fn in a read transaction on the read pool.
func (s *Store) View(ctx context.Context, fn func(tx store.ReadTx) error) error {
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return unavailable("begin read", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to undo
	return fn(&reader{ctx: ctx, q: tx})
}

// WaitOps implements store.Store.
func (s *Store) WaitOps(ctx context.Context, after uint64) error { return s.notify.Wait(ctx, after) }

// unavailable wraps a database failure: the caller may retry.
func unavailable(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &wirefleet.Error{Kind: wirefleet.KindUnavailable, Message: fmt.Sprintf("database: %s failed: %v", what, err), Err: err}
}
