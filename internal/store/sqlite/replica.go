package sqlite

import (
	"encoding/json"
	"strings"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
)

// Replication and compaction: the write paths of a read replica (ApplyOp, ResetToSnapshot)
// and of log compaction. They change rows exactly like the primary's mutations but store
// ops verbatim instead of sealing new ones.

func (t *writeTx) ApplyOp(op wirefleet.Op) error {
	if err := t.check(); err != nil {
		return err
	}
	head := t.s.w.head
	if op.Seq != head.Seq+1 {
		return wirefleet.Errorf(wirefleet.KindConflict, "op %d does not follow the local head %d", op.Seq, head.Seq)
	}
	if op.PrevHash != head.Hash {
		return wirefleet.Errorf(wirefleet.KindConflict, "op %d: prev_hash %s differs from the local hash %s at %d: the history diverged", op.Seq, op.PrevHash, head.Hash, head.Seq)
	}
	if err := oplog.Check(op); err != nil {
		return err
	}
	if err := t.applyEffect(op); err != nil {
		return err
	}
	op.Time = oplog.Time(op.Time)
	return t.insertOp(op)
}

func decode(op wirefleet.Op, v any) error {
	if err := json.Unmarshal(op.Value, v); err != nil {
		return wirefleet.Errorf(wirefleet.KindInvalid, "op %d (%s): value is not valid: %v", op.Seq, op.Type, err)
	}
	return nil
}

func (t *writeTx) applyEffect(op wirefleet.Op) error {
	switch op.Type {
	case wirefleet.OpNetworkPut:
		var v wirefleet.NetworkValue
		if err := decode(op, &v); err != nil {
			return err
		}
		return t.replaceNetwork(v.ToNetwork())
	case wirefleet.OpNetworkDelete:
		name := strings.TrimPrefix(op.Key, "network/")
		return t.removeNetwork(name)
	case wirefleet.OpPeerPut:
		var v wirefleet.PeerValue
		if err := decode(op, &v); err != nil {
			return err
		}
		p := v.ToPeer()
		if err := t.removePeer(p.Network, p.PublicKey); err != nil {
			return err
		}
		return t.insertPeerRows(p)
	case wirefleet.OpPeerReplace:
		var v wirefleet.PeerReplaceValue
		if err := decode(op, &v); err != nil {
			return err
		}
		p := v.ToPeer()
		for _, k := range []wirefleet.Key{v.Replaces, p.PublicKey} {
			if err := t.removePeer(p.Network, k); err != nil {
				return err
			}
		}
		return t.insertPeerRows(p)
	case wirefleet.OpPeerDelete:
		network, pub, err := wirefleet.ParsePeerKey(op.Key)
		if err != nil {
			return err
		}
		return t.removePeer(network, pub)
	case wirefleet.OpTokenPut:
		var v wirefleet.TokenValue
		if err := decode(op, &v); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM tokens WHERE id = ?`, v.ID); err != nil {
			return dbErr("replace token", err)
		}
		return t.insertTokenRow(v.ToToken())
	case wirefleet.OpTokenDelete:
		_, err := t.exec(`DELETE FROM tokens WHERE id = ?`, strings.TrimPrefix(op.Key, "token/"))
		return dbErr("delete token", err)
	default:
		return wirefleet.Errorf(wirefleet.KindInvalid, "op %d has unknown type %q: upgrade this wirefleet", op.Seq, op.Type)
	}
}

func (t *writeTx) replaceNetwork(n wirefleet.Network) error {
	_, err := t.exec(`INSERT OR REPLACE INTO networks (`+networkCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, networkArgs(n)...)
	return dbErr("replace network", err)
}

func (t *writeTx) removeNetwork(name string) error {
	for _, q := range []string{`DELETE FROM networks WHERE name = ?`, `DELETE FROM peers WHERE network = ?`, `DELETE FROM peer_addresses WHERE network = ?`} {
		if _, err := t.exec(q, name); err != nil {
			return dbErr("delete network", err)
		}
	}
	return nil
}

// removePeer deletes a peer and its addresses if it exists.
func (t *writeTx) removePeer(network string, pub wirefleet.Key) error {
	p, err := t.GetPeer(network, pub)
	if wirefleet.IsKind(err, wirefleet.KindNotFound) {
		return nil
	}
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
	return nil
}

func (t *writeTx) ResetToSnapshot(snap wirefleet.Snapshot) error {
	if err := t.check(); err != nil {
		return err
	}
	for _, q := range []string{`DELETE FROM networks`, `DELETE FROM peers`, `DELETE FROM peer_addresses`, `DELETE FROM tokens`, `DELETE FROM ops`} {
		if _, err := t.exec(q); err != nil {
			return dbErr("reset to snapshot", err)
		}
	}
	for _, v := range snap.Networks {
		if err := t.replaceNetwork(v.ToNetwork()); err != nil {
			return err
		}
	}
	for _, v := range snap.Peers {
		if err := t.insertPeerRows(v.ToPeer()); err != nil {
			return err
		}
	}
	for _, v := range snap.Tokens {
		if err := t.insertTokenRow(v.ToToken()); err != nil {
			return err
		}
	}
	if err := t.setBase(snap.Seq, snap.Hash); err != nil {
		return err
	}
	t.s.w.head = oplog.Head{Seq: snap.Seq, Hash: snap.Hash}
	return nil
}

func (t *writeTx) setBase(seq uint64, h wirefleet.Hash) error {
	_, err := t.exec(`UPDATE log_base SET seq = ?, hash = ? WHERE id = 1`, seq, h[:])
	return dbErr("set log base", err)
}

func (t *writeTx) CompactLog(through uint64) error {
	if err := t.check(); err != nil {
		return err
	}
	head := t.s.w.head
	if through > head.Seq {
		return wirefleet.Errorf(wirefleet.KindInvalid, "cannot compact through %d: the log ends at %d", through, head.Seq)
	}
	base, _, err := t.LogBase()
	if err != nil || through <= base {
		return err
	}
	op, err := t.Op(through)
	if err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM ops WHERE seq <= ?`, through); err != nil {
		return dbErr("compact log", err)
	}
	return t.setBase(op.Seq, op.Hash)
}
