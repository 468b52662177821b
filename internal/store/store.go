// Package store defines the persistence port of the control plane and holds its
// conformance suite (storetest). Backends (sqlite, postgres) implement Store.
//
// Contract every backend keeps:
//   - All writes go through Update, executed one at a time by a single writer. A backend may
//     group several Update calls into one physical transaction (group commit) but each call
//     is isolated: if its fn fails, none of its writes or ops survive and the other calls of
//     the batch are unaffected.
//   - Every mutating Tx method appends the matching op (wirefleet.Op) to the log in the same
//     transaction; sequence numbers are gap-free and hash-chained (internal/oplog).
//   - Update returns only once the outcome is durable (nil) or certainly rolled back (error).
//   - View runs fn on a consistent snapshot that does not block the writer.
package store

import (
	"context"
	"net/netip"
	"time"

	"github.com/wirefleet/wirefleet"
)

// Store is the persistence port consumed by internal/control.
type Store interface {
	// Update runs fn in a write transaction (see the package contract). fn must not keep tx
	// after it returns and must not block on other Update calls.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// View runs fn in a read-only, consistent transaction. Keep it short: an open read
	// transaction pins the WAL (SQLite cannot checkpoint past it), so stream the log in
	// pages (OpsAfter with a limit, one View each) rather than inside one long View.
	View(ctx context.Context, fn func(tx ReadTx) error) error
	// WaitOps returns when the log head is beyond seq or ctx is done (ctx.Err()).
	WaitOps(ctx context.Context, after uint64) error
	// Close stops the writer and closes the database.
	Close() error
}

// PeerQuery selects peers. Results are ordered by (network, public key); After continues
// after a given peer (cursor pagination).
type PeerQuery struct {
	Network    string // "" = all networks
	Enabled    *bool
	Expired    *bool
	NamePrefix string
	// ExpiresBefore selects peers with expires_at <= this time (expiry sweeper).
	ExpiresBefore *time.Time
	// After is the last peer of the previous page, exclusive.
	After *PeerID
	// Limit bounds the result; 0 means no limit.
	Limit int
}

// PeerID identifies a peer.
type PeerID struct {
	Network   string
	PublicKey wirefleet.Key
}

// ReadTx reads state and log. Methods return wirefleet errors of KindNotFound for absent rows.
type ReadTx interface {
	GetNetwork(name string) (wirefleet.Network, error)
	ListNetworks() ([]wirefleet.Network, error)
	GetPeer(network string, pub wirefleet.Key) (wirefleet.Peer, error)
	ListPeers(q PeerQuery) ([]wirefleet.Peer, error)
	// PeerAddresses returns every address used by peers of network (for IPAM).
	PeerAddresses(network string) ([]netip.Addr, error)
	CountPeers(network string) (int, error)
	GetToken(id string) (wirefleet.Token, error)
	ListTokens() ([]wirefleet.Token, error)
	// Head returns the last seq and hash (0 and the zero hash for an empty log).
	Head() (uint64, wirefleet.Hash, error)
	// LogBase returns where the stored log starts: the seq and hash of the op before the
	// first stored one ((0, zero) for a full log). Ops at or below it were compacted or, on
	// a replica, precede its snapshot: a consumer asking for them gets "compacted".
	LogBase() (uint64, wirefleet.Hash, error)
	// Op returns the op at seq (KindNotFound when absent or compacted).
	Op(seq uint64) (wirefleet.Op, error)
	// OpsAfter returns up to limit ops with seq > after, in order (limit 0 = no limit).
	OpsAfter(after uint64, limit int) ([]wirefleet.Op, error)
}

// Tx is a write transaction. Each mutation appends its op. Insert* fail with KindConflict
// when the row (or, for peers, one of its addresses in the network) exists; Update* and
// Delete* fail with KindNotFound when it does not.
type Tx interface {
	ReadTx
	InsertNetwork(n wirefleet.Network) error
	UpdateNetwork(n wirefleet.Network) error
	// DeleteNetwork deletes the network and all its peers (one network.delete op).
	DeleteNetwork(name string) error
	InsertPeer(p wirefleet.Peer) error
	UpdatePeer(p wirefleet.Peer) error
	DeletePeer(network string, pub wirefleet.Key) error
	// ReplacePeer deletes the peer old of p's network and inserts p in one step, appending
	// one peer.replace op (not a peer.delete and a peer.put): KindNotFound if old does not
	// exist, KindConflict if p (or one of its addresses, old's excepted) does, KindInvalid
	// if old is p's own key.
	ReplacePeer(old wirefleet.Key, p wirefleet.Peer) error
	InsertToken(t wirefleet.Token) error
	DeleteToken(id string) error
	// TouchTokens records last-used times. It is bookkeeping, not state: no op is appended
	// and unknown ids are ignored.
	TouchTokens(lastUsed map[string]time.Time) error
	// AfterCommit registers f to run on the writer once this call's writes are durable;
	// AfterRollback registers f to run on the writer if they are rolled back. Both run before
	// the writer starts the next transaction, so in-memory caches (IPAM) stay exactly in
	// step with the database.
	AfterCommit(f func())
	AfterRollback(f func())

	// Replication (a read replica following a primary) and compaction.

	// ApplyOp applies an op received from a primary and stores it verbatim (same seq, hash,
	// time). It must continue the local head: KindConflict if op.Seq is not head+1 or
	// op.PrevHash is not the head's hash (a diverged history), or if the op's hash does not
	// match its content. A "put" replaces the whole record; deleting an absent record is not
	// an error (the state is what the log says).
	ApplyOp(op wirefleet.Op) error
	// ResetToSnapshot replaces the whole state with snap and makes (snap.Seq, snap.Hash)
	// both the log base and the head: the stored log restarts after the snapshot.
	ResetToSnapshot(snap wirefleet.Snapshot) error
	// CompactLog deletes the ops up to and including seq (which must not exceed the head)
	// and moves the log base there. It appends no op: compaction is local.
	CompactLog(through uint64) error
}

// MaxListHint bounds how many rows a backend preallocates for a limited listing.
const MaxListHint = 100000
