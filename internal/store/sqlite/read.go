package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/store"
)

// querier is what both a read transaction and the writer's connection offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// stmts caches prepared statements on the writer's connection (the hot path of group
// commit: preparing each statement every call would cost more than executing it).
type stmts struct {
	conn *sql.Conn
	mu   sync.Mutex // guards m (only the writer uses it; the mutex keeps the race detector honest)
	m    map[string]*sql.Stmt
}

func (s *stmts) prepare(_ context.Context, conn *sql.Conn) error {
	s.conn = conn
	s.m = make(map[string]*sql.Stmt)
	return nil
}

func (s *stmts) get(ctx context.Context, q string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[q]; ok {
		return st, nil
	}
	st, err := s.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.m[q] = st
	return st, nil
}

func (s *stmts) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.Close()
	}
	s.m = nil
}

// reader implements store.ReadTx on a querier.
type reader struct {
	ctx context.Context
	q   querier
	st  *stmts // nil on the read pool
}

var _ store.ReadTx = (*reader)(nil)

func (r *reader) query(q string, args ...any) (*sql.Rows, error) {
	if r.st != nil {
		st, err := r.st.get(r.ctx, q)
		if err != nil {
			return nil, err
		}
		return st.QueryContext(r.ctx, args...)
	}
	return r.q.QueryContext(r.ctx, q, args...)
}

func (r *reader) queryRow(q string, args ...any) *sql.Row {
	if r.st != nil {
		st, err := r.st.get(r.ctx, q)
		if err == nil {
			return st.QueryRowContext(r.ctx, args...)
		}
	}
	return r.q.QueryRowContext(r.ctx, q, args...)
}

func (r *reader) exec(q string, args ...any) (sql.Result, error) {
	if r.st != nil {
		st, err := r.st.get(r.ctx, q)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(r.ctx, args...)
	}
	return r.q.ExecContext(r.ctx, q, args...)
}

// Time columns are µs since the epoch.
func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNullMicros(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

func joinList[T fmt.Stringer](xs []T) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x.String())
	}
	return b.String()
}

func splitList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]T, len(parts))
	for i, p := range parts {
		v, err := parse(p)
		if err != nil {
			return nil, corrupt("list element %q: %v", p, err)
		}
		out[i] = v
	}
	return out, nil
}

// decodeKey is ParseKey for the store's own rows: no allocation (the listing hot path).
func decodeKey(s string) (wirefleet.Key, error) {
	var k wirefleet.Key
	if len(s) != 44 {
		return k, fmt.Errorf("length %d", len(s))
	}
	var buf [33]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(s))
	if err != nil || n != wirefleet.KeyLen {
		return k, fmt.Errorf("not a base64 key")
	}
	copy(k[:], buf[:n])
	return k, nil
}

// parseAddrs splits a comma-separated address column.
func parseAddrs(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	out := make([]netip.Addr, 0, strings.Count(s, ",")+1)
	for s != "" {
		part, rest, _ := strings.Cut(s, ",")
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, corrupt("peer address %q: %v", part, err)
		}
		out = append(out, a)
		s = rest
	}
	return out, nil
}

func corrupt(format string, args ...any) error {
	return &wirefleet.Error{Kind: wirefleet.KindInternal, Message: "database row is corrupt: " + fmt.Sprintf(format, args...)}
}

func parsePrefixCol(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	return netip.ParsePrefix(s)
}

const networkCols = `name, listen_port, ipv4, ipv6, endpoint, routes, dns, mtu, keepalive, allocation, public_key, private_key, created_at, updated_at`

func scanNetwork(sc interface{ Scan(...any) error }) (wirefleet.Network, error) {
	var n wirefleet.Network
	var port int64
	var ipv4, ipv6, routes, dns, alloc, pub, priv string
	var created, updated int64
	if err := sc.Scan(&n.Name, &port, &ipv4, &ipv6, &n.Endpoint, &routes, &dns, &n.MTU, &n.Keepalive, &alloc, &pub, &priv, &created, &updated); err != nil {
		return n, err
	}
	var err error
	n.ListenPort = uint16(port)
	if n.IPv4, err = parsePrefixCol(ipv4); err != nil {
		return n, corrupt("network %s ipv4: %v", n.Name, err)
	}
	if n.IPv6, err = parsePrefixCol(ipv6); err != nil {
		return n, corrupt("network %s ipv6: %v", n.Name, err)
	}
	if n.Routes, err = splitList(routes, netip.ParsePrefix); err != nil {
		return n, err
	}
	if n.DNS, err = splitList(dns, netip.ParseAddr); err != nil {
		return n, err
	}
	n.Allocation = wirefleet.AllocationMode(alloc)
	if n.PublicKey, err = wirefleet.ParseKey(pub); err != nil {
		return n, corrupt("network %s public key: %v", n.Name, err)
	}
	pk, err := wirefleet.ParseKey(priv)
	if err != nil {
		return n, corrupt("network %s private key: %v", n.Name, err)
	}
	n.PrivateKey = wirefleet.NewSecretKey(pk)
	n.CreatedAt, n.UpdatedAt = fromMicros(created), fromMicros(updated)
	return n, nil
}

func notFound(format string, args ...any) error {
	return wirefleet.Errorf(wirefleet.KindNotFound, format, args...)
}

func (r *reader) GetNetwork(name string) (wirefleet.Network, error) {
	n, err := scanNetwork(r.queryRow(`SELECT `+networkCols+` FROM networks WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return n, notFound("network %q does not exist", name)
	}
	if err != nil {
		return n, dbErr("read network", err)
	}
	return n, nil
}

func (r *reader) ListNetworks() ([]wirefleet.Network, error) {
	rows, err := r.query(`SELECT ` + networkCols + ` FROM networks ORDER BY name`)
	if err != nil {
		return nil, dbErr("list networks", err)
	}
	defer rows.Close()
	var out []wirefleet.Network
	for rows.Next() {
		n, err := scanNetwork(rows)
		if err != nil {
			return nil, dbErr("list networks", err)
		}
		out = append(out, n)
	}
	return out, dbErr("list networks", rows.Err())
}

const peerCols = `network, public_key, name, addresses, preshared_key, enabled, expires_at, expired, created_at, updated_at`

// peerScanner decodes peer rows. Its scan destinations and the Scan argument list are
// built once per query, not per row: on a 50,000-row listing the per-row allocations of
// the destinations (they escape through Scan's ...any) were a third of the bytes allocated.
type peerScanner struct {
	network, pub, name, addrs string
	psk                       sql.NullString
	enabled, expired          bool
	expires                   sql.NullInt64
	created, updated          int64
	dest                      []any
}

func newPeerScanner() *peerScanner {
	s := &peerScanner{}
	s.dest = []any{&s.network, &s.pub, &s.name, &s.addrs, &s.psk, &s.enabled, &s.expires, &s.expired, &s.created, &s.updated}
	return s
}

// scan decodes the current row into *p (in place: a listing scans straight into its
// result slice).
func (s *peerScanner) scan(sc interface{ Scan(...any) error }, p *wirefleet.Peer) error {
	if err := sc.Scan(s.dest...); err != nil {
		return err
	}
	var err error
	if p.PublicKey, err = decodeKey(s.pub); err != nil {
		return corrupt("peer public key %q: %v", s.pub, err)
	}
	if p.Addresses, err = parseAddrs(s.addrs); err != nil {
		return err
	}
	if s.psk.Valid {
		k, err := wirefleet.ParseKey(s.psk.String)
		if err != nil {
			return corrupt("peer %s preshared key: %v", s.pub, err)
		}
		p.PresharedKey = wirefleet.NewSecretKey(k)
	}
	p.Network, p.Name, p.Enabled, p.Expired = s.network, s.name, s.enabled, s.expired
	p.ExpiresAt = fromNullMicros(s.expires)
	p.CreatedAt, p.UpdatedAt = fromMicros(s.created), fromMicros(s.updated)
	return nil
}

func scanPeer(sc interface{ Scan(...any) error }) (wirefleet.Peer, error) {
	var p wirefleet.Peer
	err := newPeerScanner().scan(sc, &p)
	return p, err
}

func (r *reader) GetPeer(network string, pub wirefleet.Key) (wirefleet.Peer, error) {
	p, err := scanPeer(r.queryRow(`SELECT `+peerCols+` FROM peers WHERE network = ? AND public_key = ?`, network, pub.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return p, notFound("peer %s does not exist in network %q", pub, network)
	}
	if err != nil {
		return p, dbErr("read peer", err)
	}
	return p, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// peerQuerySQL builds the SELECT of q. Booleans are literals, not parameters, so that the
// planner can use the partial index peers_expiry (expires_at IS NOT NULL AND expired = 0).
func peerQuerySQL(q store.PeerQuery) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`SELECT ` + peerCols + ` FROM peers WHERE 1=1`)
	var args []any
	if q.Network != "" {
		sb.WriteString(` AND network = ?`)
		args = append(args, q.Network)
	}
	if q.Enabled != nil {
		sb.WriteString(` AND enabled = ` + strconv.Itoa(boolInt(*q.Enabled)))
	}
	if q.Expired != nil {
		sb.WriteString(` AND expired = ` + strconv.Itoa(boolInt(*q.Expired)))
	}
	if q.NamePrefix != "" {
		sb.WriteString(` AND substr(name, 1, length(?)) = ?`)
		args = append(args, q.NamePrefix, q.NamePrefix)
	}
	if q.ExpiresBefore != nil {
		sb.WriteString(` AND expires_at IS NOT NULL AND expires_at <= ?`)
		args = append(args, toMicros(*q.ExpiresBefore))
	}
	if q.After != nil {
		sb.WriteString(` AND (network, public_key) > (?, ?)`)
		args = append(args, q.After.Network, q.After.PublicKey.String())
	}
	sb.WriteString(` ORDER BY network, public_key`)
	if q.Limit > 0 {
		sb.WriteString(` LIMIT ?`)
		args = append(args, q.Limit)
	}
	return sb.String(), args
}

func (r *reader) ListPeers(q store.PeerQuery) ([]wirefleet.Peer, error) {
	query, args := peerQuerySQL(q)
	rows, err := r.query(query, args...)
	if err != nil {
		return nil, dbErr("list peers", err)
	}
	defer rows.Close()
	out := make([]wirefleet.Peer, 0, min(max(q.Limit, 16), store.MaxListHint))
	sc := newPeerScanner()
	for rows.Next() {
		out = append(out, wirefleet.Peer{})
		if err := sc.scan(rows, &out[len(out)-1]); err != nil {
			return nil, dbErr("list peers", err)
		}
	}
	return out, dbErr("list peers", rows.Err())
}

func (r *reader) PeerAddresses(network string) ([]netip.Addr, error) {
	rows, err := r.query(`SELECT address FROM peer_addresses WHERE network = ?`, network)
	if err != nil {
		return nil, dbErr("list peer addresses", err)
	}
	defer rows.Close()
	var out []netip.Addr
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, dbErr("list peer addresses", err)
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, corrupt("peer address %q: %v", s, err)
		}
		out = append(out, a)
	}
	return out, dbErr("list peer addresses", rows.Err())
}

func (r *reader) CountPeers(network string) (int, error) {
	var n int
	err := r.queryRow(`SELECT count(*) FROM peers WHERE network = ?`, network).Scan(&n)
	return n, dbErr("count peers", err)
}

const tokenCols = `id, name, hash, roles, networks, expires_at, last_used_at, created_at`

func scanToken(sc interface{ Scan(...any) error }) (wirefleet.Token, error) {
	var t wirefleet.Token
	var hash []byte
	var roles, nets string
	var expires, used sql.NullInt64
	var created int64
	if err := sc.Scan(&t.ID, &t.Name, &hash, &roles, &nets, &expires, &used, &created); err != nil {
		return t, err
	}
	if len(hash) != len(t.Hash) {
		return t, corrupt("token %s hash has %d bytes", t.ID, len(hash))
	}
	copy(t.Hash[:], hash)
	if roles != "" {
		for _, r := range strings.Split(roles, ",") {
			t.Roles = append(t.Roles, wirefleet.Role(r))
		}
	}
	if nets != "" {
		t.Networks = strings.Split(nets, ",")
	}
	t.ExpiresAt, t.LastUsedAt = fromNullMicros(expires), fromNullMicros(used)
	t.CreatedAt = fromMicros(created)
	return t, nil
}

func (r *reader) GetToken(id string) (wirefleet.Token, error) {
	t, err := scanToken(r.queryRow(`SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, notFound("token %q does not exist", id)
	}
	if err != nil {
		return t, dbErr("read token", err)
	}
	return t, nil
}

func (r *reader) ListTokens() ([]wirefleet.Token, error) {
	rows, err := r.query(`SELECT ` + tokenCols + ` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, dbErr("list tokens", err)
	}
	defer rows.Close()
	var out []wirefleet.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, dbErr("list tokens", err)
		}
		out = append(out, t)
	}
	return out, dbErr("list tokens", rows.Err())
}

func (r *reader) Head() (uint64, wirefleet.Hash, error) {
	var seq uint64
	var h []byte
	err := r.queryRow(`SELECT seq, hash FROM ops ORDER BY seq DESC LIMIT 1`).Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return r.LogBase()
	}
	if err != nil {
		return 0, wirefleet.Hash{}, dbErr("read log head", err)
	}
	out, err := hashOf(seq, h)
	return seq, out, err
}

func (r *reader) LogBase() (uint64, wirefleet.Hash, error) {
	var seq uint64
	var h []byte
	if err := r.queryRow(`SELECT seq, hash FROM log_base WHERE id = 1`).Scan(&seq, &h); err != nil {
		return 0, wirefleet.Hash{}, dbErr("read log base", err)
	}
	out, err := hashOf(seq, h)
	return seq, out, err
}

func hashOf(seq uint64, b []byte) (wirefleet.Hash, error) {
	var out wirefleet.Hash
	if len(b) != len(out) {
		return out, corrupt("hash at seq %d has %d bytes", seq, len(b))
	}
	copy(out[:], b)
	return out, nil
}

const opCols = `seq, prev_hash, hash, time, type, key, value, value_digest`

func scanOp(sc interface{ Scan(...any) error }) (wirefleet.Op, error) {
	var op wirefleet.Op
	var prev, h, value, digest []byte
	var t int64
	var typ string
	if err := sc.Scan(&op.Seq, &prev, &h, &t, &typ, &op.Key, &value, &digest); err != nil {
		return op, err
	}
	if digest != nil {
		d, err := hashOf(op.Seq, digest)
		if err != nil {
			return op, err
		}
		op.ValueDigest = &d
	}
	if len(prev) != len(op.PrevHash) || len(h) != len(op.Hash) {
		return op, corrupt("op %d hashes have the wrong length", op.Seq)
	}
	copy(op.PrevHash[:], prev)
	copy(op.Hash[:], h)
	op.Time = fromMicros(t)
	op.Type = wirefleet.OpType(typ)
	op.Value = value
	return op, nil
}

func (r *reader) Op(seq uint64) (wirefleet.Op, error) {
	op, err := scanOp(r.queryRow(`SELECT `+opCols+` FROM ops WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return op, notFound("op %d is not in the log", seq)
	}
	return op, dbErr("read op", err)
}

func (r *reader) OpsAfter(after uint64, limit int) ([]wirefleet.Op, error) {
	q := `SELECT ` + opCols + ` FROM ops WHERE seq > ? ORDER BY seq`
	args := []any{after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := r.query(q, args...)
	if err != nil {
		return nil, dbErr("read ops", err)
	}
	defer rows.Close()
	var out []wirefleet.Op
	for rows.Next() {
		op, err := scanOp(rows)
		if err != nil {
			return nil, dbErr("read ops", err)
		}
		out = append(out, op)
	}
	return out, dbErr("read ops", rows.Err())
}

// dbErr wraps a database error (nil stays nil; wirefleet errors pass through).
func dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var we *wirefleet.Error
	if errors.As(err, &we) {
		return err
	}
	return unavailable(what, err)
}
