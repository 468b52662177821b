// Package oplog implements the operation log's hash chain: sealing new ops, verifying a
// chain (and detecting a diverged one), redacting sensitive values without breaking
// verification, and a broadcast that wakes followers when new ops are committed.
//
// Canonical encoding hashed for an op (all integers big-endian):
//
//	"wirefleet/op/v1\x00" | seq u64 | prev_hash [32] | time unix-µs i64 |
//	len(type) u32 | type | len(key) u32 | key | SHA-256(value) [32]
//
// Time is truncated to microseconds (UTC) when the op is sealed, so that every backend
// (SQLite integers, PostgreSQL timestamptz) round-trips it exactly. Hashing the value's
// digest instead of the value lets a redacted op keep a verifiable link: see Redact.
package oplog

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wirefleet/wirefleet"
)

const domain = "wirefleet/op/v1\x00"

// Digest returns SHA-256(value).
func Digest(value []byte) wirefleet.Hash { return sha256.Sum256(value) }

// Time normalises an op time: UTC, microsecond precision.
func Time(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ComputeHash returns the chain hash of an op from its parts.
func ComputeHash(seq uint64, prev wirefleet.Hash, t time.Time, typ wirefleet.OpType, key string, valueDigest wirefleet.Hash) wirefleet.Hash {
	h := sha256.New()
	var b [8]byte
	h.Write([]byte(domain))
	binary.BigEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	h.Write(prev[:])
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixMicro()))
	h.Write(b[:])
	writeString(h, string(typ))
	writeString(h, key)
	h.Write(valueDigest[:])
	var out wirefleet.Hash
	h.Sum(out[:0])
	return out
}

func writeString(h interface{ Write([]byte) (int, error) }, s string) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(len(s)))
	_, _ = h.Write(b[:])
	_, _ = h.Write([]byte(s))
}

// valueDigest is the digest an op's hash covers.
func valueDigest(op wirefleet.Op) wirefleet.Hash {
	if op.ValueDigest != nil {
		return *op.ValueDigest
	}
	return Digest(op.Value)
}

// Head is the end of a chain: the last seq and its hash (0 and zero for an empty log).
type Head struct {
	Seq  uint64
	Hash wirefleet.Hash
}

// Next seals the op that follows h and returns it; h is not modified.
func (h Head) Next(t time.Time, typ wirefleet.OpType, key string, value []byte) wirefleet.Op {
	op := wirefleet.Op{
		Seq:      h.Seq + 1,
		PrevHash: h.Hash,
		Time:     Time(t),
		Type:     typ,
		Key:      key,
		Value:    json.RawMessage(value),
	}
	op.Hash = ComputeHash(op.Seq, op.PrevHash, op.Time, op.Type, op.Key, Digest(value))
	return op
}

// Check verifies one op's own hash (not its link to a predecessor).
func Check(op wirefleet.Op) error {
	want := ComputeHash(op.Seq, op.PrevHash, Time(op.Time), op.Type, op.Key, valueDigest(op))
	if want != op.Hash {
		return wirefleet.Errorf(wirefleet.KindConflict, "op %d: hash %s does not match its content (want %s): the log was altered", op.Seq, op.Hash, want)
	}
	return nil
}

// Verify checks that ops continue the chain at from: consecutive sequence numbers starting
// at from.Seq+1, each prev_hash equal to the previous hash, each hash matching its content.
// It returns the new head. A KindConflict error means a tampered or diverged history.
func Verify(from Head, ops []wirefleet.Op) (Head, error) {
	h := from
	for _, op := range ops {
		if op.Seq != h.Seq+1 {
			return h, wirefleet.Errorf(wirefleet.KindConflict, "op log gap: seq %d follows %d", op.Seq, h.Seq)
		}
		if op.PrevHash != h.Hash {
			return h, wirefleet.Errorf(wirefleet.KindConflict, "op %d: prev_hash %s does not match the hash of op %d (%s): the history diverged", op.Seq, op.PrevHash, h.Seq, h.Hash)
		}
		if err := Check(op); err != nil {
			return h, err
		}
		h = Head{Seq: op.Seq, Hash: op.Hash}
	}
	return h, nil
}

// Redact returns op with its value replaced by value (e.g. without a private key). The
// original digest goes into ValueDigest so that the consumer can still verify the chain.
func Redact(op wirefleet.Op, value []byte) wirefleet.Op {
	d := valueDigest(op)
	op.ValueDigest = &d
	op.Value = json.RawMessage(value)
	return op
}

// Encode marshals an op value. Values are domain structs, so failure is a programming error
// reported as KindInternal.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &wirefleet.Error{Kind: wirefleet.KindInternal, Message: fmt.Sprintf("encode op value: %v", err), Err: err}
	}
	return b, nil
}
