// Package control is the control plane's use-case layer: what the REST API, the CLI's
// offline commands and the compat facades call. It validates input, allocates addresses
// (internal/ipam), generates keys and tokens, and turns each use case into one store
// transaction that also appends its op (internal/store). It knows nothing about HTTP.
//
// Concurrency: a Service is safe for concurrent use. Writes are serialised by the store's
// single writer, which also owns the per-network IPAM pools (they are touched only inside
// store.Update callbacks and their commit/rollback hooks), so allocation needs no locks
// and stays exactly in step with the database.
package control

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/ipam"
	"github.com/wirefleet/wirefleet/internal/store"
)

// Options configure a Service. The zero value is usable.
type Options struct {
	// Now is the clock (tests inject a fake one); nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Rand drives random address allocation; nil means a randomly seeded source.
	Rand *rand.Rand
	// SweepEvery is the expiry sweeper's period in Run (default 10 s).
	SweepEvery time.Duration
	// FlushEvery is how often Run persists token last-used times (default 30 s).
	FlushEvery time.Duration
}

// Service implements the control-plane use cases on a store.
type Service struct {
	st         store.Store
	now        func() time.Time
	log        *slog.Logger
	rnd        *rand.Rand
	sweepEvery time.Duration
	flushEvery time.Duration

	// pools is the IPAM cache: used only on the store's writer goroutine (inside Update
	// callbacks and commit/rollback hooks), hence no mutex.
	pools map[string]*poolEntry
	// nets caches networks as read inside the writer, under the same rule: entries are
	// dropped by any call that changes a network, when it runs and again if it rolls back.
	// (This assumes the Service is the only writer of networks, as on a primary.)
	nets map[string]wirefleet.Network

	usageMu sync.Mutex           // guards usage
	usage   map[string]time.Time // token id → last use not yet persisted
}

// New returns a Service on st.
func New(st store.Store, o Options) *Service {
	s := &Service{
		st:         st,
		now:        o.Now,
		log:        o.Logger,
		rnd:        o.Rand,
		sweepEvery: o.SweepEvery,
		flushEvery: o.FlushEvery,
		pools:      make(map[string]*poolEntry),
		nets:       make(map[string]wirefleet.Network),
		usage:      make(map[string]time.Time),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.rnd == nil {
		s.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if s.sweepEvery <= 0 {
		s.sweepEvery = 10 * time.Second
	}
	if s.flushEvery <= 0 {
		s.flushEvery = 30 * time.Second
	}
	return s
}

// clock returns the current time at the precision every backend stores (µs, UTC).
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Run runs the background duties until ctx is done: the expiry sweeper and the periodic
// flush of token last-used times (flushed once more on the way out). It returns nil on
// cancellation.
func (s *Service) Run(ctx context.Context) error {
	sweep := time.NewTicker(s.sweepEvery)
	defer sweep.Stop()
	flush := time.NewTicker(s.flushEvery)
	defer flush.Stop()
	if _, err := s.ExpirePeers(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("expiry sweep failed", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := s.FlushTokenUsage(fctx)
			cancel()
			if err != nil {
				s.log.Warn("flush token usage on shutdown failed", "err", err)
			}
			return nil
		case <-sweep.C:
			if n, err := s.ExpirePeers(ctx); err != nil {
				s.log.Error("expiry sweep failed", "err", err)
			} else if n > 0 {
				s.log.Info("expired peers", "count", n)
			}
		case <-flush.C:
			if err := s.FlushTokenUsage(ctx); err != nil {
				s.log.Warn("flush token usage failed", "err", err)
			}
		}
	}
}

// poolEntry is a cached pool with the network configuration it was built for: a network
// recreated or re-addressed (even by a rolled-back call) no longer matches and is rebuilt.
type poolEntry struct {
	key  poolKey
	pool *ipam.Pool
}

type poolKey struct {
	ipv4, ipv6 string
	mode       wirefleet.AllocationMode
	created    time.Time
}

func keyOf(n wirefleet.Network) poolKey {
	return poolKey{n.IPv4.String(), n.IPv6.String(), n.Allocation, n.CreatedAt}
}

// pool returns the IPAM pool of n as seen by tx, building it once from the stored
// addresses. Call only inside an Update callback.
func (s *Service) pool(tx store.ReadTx, n wirefleet.Network) (*ipam.Pool, error) {
	if e, ok := s.pools[n.Name]; ok && e.key == keyOf(n) {
		return e.pool, nil
	}
	addrs, err := tx.PeerAddresses(n.Name)
	if err != nil {
		return nil, err
	}
	p := ipam.New(n, s.rnd)
	p.Load(addrs)
	s.pools[n.Name] = &poolEntry{key: keyOf(n), pool: p}
	return p, nil
}

// dropPool forgets a pool if it is still the cached one (hook context only).
func (s *Service) dropPool(name string, p *ipam.Pool) {
	if e, ok := s.pools[name]; ok && e.pool == p {
		delete(s.pools, name)
	}
}

// network returns a network as seen by tx, from the writer's cache when possible. Call only
// inside an Update callback.
func (s *Service) network(tx store.ReadTx, name string) (wirefleet.Network, error) {
	if n, ok := s.nets[name]; ok {
		return n, nil
	}
	n, err := tx.GetNetwork(name)
	if err != nil {
		return n, err
	}
	s.nets[name] = n
	return n, nil
}

// forgetNetwork drops the cached network now (later calls of the batch read the changed
// row) and again if this call rolls back (a later call may have cached the change).
func (s *Service) forgetNetwork(tx store.Tx, name string) {
	delete(s.nets, name)
	tx.AfterRollback(func() { delete(s.nets, name) })
}
