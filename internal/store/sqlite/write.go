package sqlite

import (
	"database/sql"
	"errors"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/store"
)

// writeTx implements store.Tx for one Update call inside the writer's batch transaction.
type writeTx struct {
	reader
	s    *Store
	req  *request
	done bool // set when fn has returned: a kept tx must not be used
}

var _ store.Tx = (*writeTx)(nil)

func (t *writeTx) check() error {
	if t.done {
		return wirefleet.Errorf(wirefleet.KindInternal, "store transaction used after its Update call returned")
	}
	return nil
}

func (t *writeTx) AfterCommit(f func())   { t.req.onCommit = append(t.req.onCommit, f) }
func (t *writeTx) AfterRollback(f func()) { t.req.onRollback = append(t.req.onRollback, f) }

// isConstraint reports a UNIQUE/PRIMARY KEY violation.
func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// appendOp seals and inserts the next op, advancing the writer's head.
func (t *writeTx) appendOp(typ wirefleet.OpType, key string, v any) error {
	value, err := oplog.Encode(v)
	if err != nil {
		return err
	}
	op := t.s.w.head.Next(t.s.now(), typ, key, value)
	return t.insertOp(op)
}

// insertOp stores op as is and makes it the head.
func (t *writeTx) insertOp(op wirefleet.Op) error {
	var digest []byte
	if op.ValueDigest != nil {
		digest = op.ValueDigest[:]
	}
	if _, err := t.exec(`INSERT INTO ops (`+opCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		op.Seq, op.PrevHash[:], op.Hash[:], toMicros(op.Time), string(op.Type), op.Key, []byte(op.Value), digest); err != nil {
		return dbErr("append op", err)
	}
	t.s.w.head = oplog.Head{Seq: op.Seq, Hash: op.Hash}
	return nil
}

func networkArgs(n wirefleet.Network) []any {
	ipv4, ipv6 := "", ""
	if n.IPv4.IsValid() {
		ipv4 = n.IPv4.String()
	}
	if n.IPv6.IsValid() {
		ipv6 = n.IPv6.String()
	}
	return []any{n.Name, int64(n.ListenPort), ipv4, ipv6, n.Endpoint, joinList(n.Routes), joinList(n.DNS),
		n.MTU, n.Keepalive, string(n.Allocation), n.PublicKey.String(), n.PrivateKey.Reveal().String(),
		toMicros(n.CreatedAt), toMicros(n.UpdatedAt)}
}

// checkNetwork is what InsertNetwork and UpdateNetwork require of n: valid, and with the
// private key the store keeps for the gateways.
func checkNetwork(n wirefleet.Network) error {
	if err := n.Validate(); err != nil {
		return err
	}
	if !n.PrivateKey.IsSet() {
		return wirefleet.Errorf(wirefleet.KindInvalid, "network %q has no private key", n.Name)
	}
	return nil
}

func (t *writeTx) InsertNetwork(n wirefleet.Network) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkNetwork(n); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO networks (`+networkCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, networkArgs(n)...)
	if isConstraint(err) {
		return wirefleet.Errorf(wirefleet.KindConflict, "network %q already exists", n.Name)
	}
	if err != nil {
		return dbErr("insert network", err)
	}
	return t.appendOp(wirefleet.OpNetworkPut, wirefleet.NetworkKey(n.Name), wirefleet.NetworkValueOf(n))
}

func (t *writeTx) UpdateNetwork(n wirefleet.Network) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkNetwork(n); err != nil {
		return err
	}
	args := networkArgs(n)
	res, err := t.exec(`UPDATE networks SET listen_port = ?, ipv4 = ?, ipv6 = ?, endpoint = ?, routes = ?, dns = ?, mtu = ?, keepalive = ?, allocation = ?, public_key = ?, private_key = ?, created_at = ?, updated_at = ? WHERE name = ?`,
		append(args[1:], args[0])...)
	if err := affected(res, err, "update network", func() error { return notFound("network %q does not exist", n.Name) }); err != nil {
		return err
	}
	return t.appendOp(wirefleet.OpNetworkPut, wirefleet.NetworkKey(n.Name), wirefleet.NetworkValueOf(n))
}

func affected(res sql.Result, err error, what string, missing func() error) error {
	if err != nil {
		return dbErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr(what, err)
	}
	if n == 0 {
		return missing()
	}
	return nil
}

func (t *writeTx) DeleteNetwork(name string) error {
	if err := t.check(); err != nil {
		return err
	}
	res, err := t.exec(`DELETE FROM networks WHERE name = ?`, name)
	if err := affected(res, err, "delete network", func() error { return notFound("network %q does not exist", name) }); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM peers WHERE network = ?`, name); err != nil {
		return dbErr("delete peers of network", err)
	}
	if _, err := t.exec(`DELETE FROM peer_addresses WHERE network = ?`, name); err != nil {
		return dbErr("delete peer addresses of network", err)
	}
	return t.appendOp(wirefleet.OpNetworkDelete, wirefleet.NetworkKey(name), wirefleet.DeleteValue{Network: name})
}

func pskArg(p wirefleet.Peer) sql.NullString {
	if !p.PresharedKey.IsSet() {
		return sql.NullString{}
	}
	return sql.NullString{String: p.PresharedKey.Reveal().String(), Valid: true}
}

// insertAddresses adds the address rows of p in one statement, naming the owner of a
// taken address.
func (t *writeTx) insertAddresses(p wirefleet.Peer) error {
	pub := p.PublicKey.String()
	args := make([]any, 0, 3*len(p.Addresses))
	q := addrInsert(len(p.Addresses))
	for _, a := range p.Addresses {
		args = append(args, p.Network, a.String(), pub)
	}
	_, err := t.exec(q, args...)
	if isConstraint(err) {
		for _, a := range p.Addresses {
			var owner string
			if t.queryRow(`SELECT public_key FROM peer_addresses WHERE network = ? AND address = ?`, p.Network, a.String()).Scan(&owner) == nil {
				return wirefleet.Errorf(wirefleet.KindConflict, "address %s is already used by peer %s in network %q", a, owner, p.Network)
			}
		}
		return wirefleet.Errorf(wirefleet.KindConflict, "an address of peer %s is already used in network %q", p.PublicKey, p.Network)
	}
	return dbErr("insert peer addresses", err)
}

// addrInsert returns the INSERT for n address rows (a few distinct texts: the statement
// cache keeps one prepared statement per count).
func addrInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO peer_addresses (network, address, public_key) VALUES (?, ?, ?)`)
	for range n - 1 {
		b.WriteString(`, (?, ?, ?)`)
	}
	return b.String()
}

// checkPeer validates p against its stored network.
func (t *writeTx) checkPeer(p wirefleet.Peer) error {
	if err := p.Validate(); err != nil {
		return err
	}
	var exists int
	err := t.queryRow(`SELECT 1 FROM networks WHERE name = ?`, p.Network).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("network %q does not exist", p.Network)
	}
	return dbErr("check network", err)
}

func (t *writeTx) InsertPeer(p wirefleet.Peer) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := t.checkPeer(p); err != nil {
		return err
	}
	if err := t.insertPeerRows(p); err != nil {
		return err
	}
	return t.appendOp(wirefleet.OpPeerPut, wirefleet.PeerKey(p.Network, p.PublicKey), wirefleet.PeerValueOf(p))
}

// insertPeerRows inserts the peer row and its address rows.
func (t *writeTx) insertPeerRows(p wirefleet.Peer) error {
	_, err := t.exec(`INSERT INTO peers (`+peerCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.Network, p.PublicKey.String(), p.Name, joinList(p.Addresses), pskArg(p), boolInt(p.Enabled),
		nullMicros(p.ExpiresAt), boolInt(p.Expired), toMicros(p.CreatedAt), toMicros(p.UpdatedAt))
	if isConstraint(err) {
		return wirefleet.Errorf(wirefleet.KindConflict, "peer %s already exists in network %q", p.PublicKey, p.Network)
	}
	if err != nil {
		return dbErr("insert peer", err)
	}
	return t.insertAddresses(p)
}

func (t *writeTx) UpdatePeer(p wirefleet.Peer) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := t.checkPeer(p); err != nil {
		return err
	}
	old, err := t.GetPeer(p.Network, p.PublicKey)
	if err != nil {
		return err
	}
	_, err = t.exec(`UPDATE peers SET name = ?, addresses = ?, preshared_key = ?, enabled = ?, expires_at = ?, expired = ?, created_at = ?, updated_at = ? WHERE network = ? AND public_key = ?`,
		p.Name, joinList(p.Addresses), pskArg(p), boolInt(p.Enabled), nullMicros(p.ExpiresAt), boolInt(p.Expired),
		toMicros(p.CreatedAt), toMicros(p.UpdatedAt), p.Network, p.PublicKey.String())
	if err != nil {
		return dbErr("update peer", err)
	}
	if !sameAddrs(old, p) {
		if _, err := t.exec(`DELETE FROM peer_addresses WHERE network = ? AND public_key = ?`, p.Network, p.PublicKey.String()); err != nil {
			return dbErr("update peer addresses", err)
		}
		if err := t.insertAddresses(p); err != nil {
			return err
		}
	}
	return t.appendOp(wirefleet.OpPeerPut, wirefleet.PeerKey(p.Network, p.PublicKey), wirefleet.PeerValueOf(p))
}

func sameAddrs(a, b wirefleet.Peer) bool {
	if len(a.Addresses) != len(b.Addresses) {
		return false
	}
	for i := range a.Addresses {
		if a.Addresses[i] != b.Addresses[i] {
			return false
		}
	}
	return true
}

func (t *writeTx) DeletePeer(network string, pub wirefleet.Key) error {
	if err := t.check(); err != nil {
		return err
	}
	p, err := t.GetPeer(network, pub)
	if err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM peers WHERE network = ? AND public_key = ?`, network, pub.String()); err != nil {
		return dbErr("delete peer", err)
	}
	for _, a := range p.Addresses {
		if _, err := t.exec(`DELETE FROM peer_addresses WHERE network = ? AND address = ?`, network, a.String()); err != nil {
			return dbErr("delete peer address", err)
		}
	}
	return t.appendOp(wirefleet.OpPeerDelete, wirefleet.PeerKey(network, pub), wirefleet.DeleteValue{Network: network, PublicKey: &pub})
}

func (t *writeTx) ReplacePeer(old wirefleet.Key, p wirefleet.Peer) error {
	if err := t.check(); err != nil {
		return err
	}
	if old == p.PublicKey {
		return wirefleet.Errorf(wirefleet.KindInvalid, "peer %s cannot replace itself in network %q: update it instead", old, p.Network)
	}
	if err := t.checkPeer(p); err != nil {
		return err
	}
	if _, err := t.GetPeer(p.Network, old); err != nil {
		return err
	}
	if err := t.removePeer(p.Network, old); err != nil {
		return err
	}
	if err := t.insertPeerRows(p); err != nil {
		return err
	}
	return t.appendOp(wirefleet.OpPeerReplace, wirefleet.PeerKey(p.Network, p.PublicKey),
		wirefleet.PeerReplaceValue{PeerValue: wirefleet.PeerValueOf(p), Replaces: old})
}

func (t *writeTx) InsertToken(tok wirefleet.Token) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := tok.Validate(); err != nil {
		return err
	}
	if err := t.insertTokenRow(tok); err != nil {
		return err
	}
	tok.LastUsedAt = nil // bookkeeping, not replicated
	return t.appendOp(wirefleet.OpTokenPut, wirefleet.TokenKey(tok.ID), wirefleet.TokenValueOf(tok))
}

func (t *writeTx) insertTokenRow(tok wirefleet.Token) error {
	roles := make([]string, len(tok.Roles))
	for i, r := range tok.Roles {
		roles[i] = string(r)
	}
	_, err := t.exec(`INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		tok.ID, tok.Name, tok.Hash[:], strings.Join(roles, ","), strings.Join(tok.Networks, ","),
		nullMicros(tok.ExpiresAt), nullMicros(tok.LastUsedAt), toMicros(tok.CreatedAt))
	if isConstraint(err) {
		return wirefleet.Errorf(wirefleet.KindConflict, "token %q already exists", tok.ID)
	}
	return dbErr("insert token", err)
}

func (t *writeTx) DeleteToken(id string) error {
	if err := t.check(); err != nil {
		return err
	}
	res, err := t.exec(`DELETE FROM tokens WHERE id = ?`, id)
	if err := affected(res, err, "delete token", func() error { return notFound("token %q does not exist", id) }); err != nil {
		return err
	}
	return t.appendOp(wirefleet.OpTokenDelete, wirefleet.TokenKey(id), wirefleet.DeleteValue{TokenID: id})
}

func (t *writeTx) TouchTokens(lastUsed map[string]time.Time) error {
	if err := t.check(); err != nil {
		return err
	}
	for id, at := range lastUsed {
		if _, err := t.exec(`UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?`, toMicros(at), id); err != nil {
			return dbErr("touch token", err)
		}
	}
	return nil
}
