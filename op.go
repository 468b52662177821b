package wirefleet

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// OpType names a mutation in the operation log.
type OpType string

// The op types. A consumer applies each in O(1): put = create or replace the whole record,
// delete = remove it, replace = remove one peer and put another in its place, as one change
// (a device re-registering with a new key: no consumer ever sees the name with no peer or
// with two). Deleting a network removes its peers too (no peer.delete ops follow).
const (
	OpNetworkPut    OpType = "network.put"    // Key NetworkKey, Value NetworkValue
	OpNetworkDelete OpType = "network.delete" // Key NetworkKey, Value DeleteValue
	OpPeerPut       OpType = "peer.put"       // Key PeerKey, Value PeerValue
	OpPeerDelete    OpType = "peer.delete"    // Key PeerKey, Value DeleteValue
	OpPeerReplace   OpType = "peer.replace"   // Key PeerKey of the new peer, Value PeerReplaceValue
	OpTokenPut      OpType = "token.put"      // Key TokenKey, Value TokenValue
	OpTokenDelete   OpType = "token.delete"   // Key TokenKey, Value DeleteValue
)

// Hash is a SHA-256 link of the op-log hash chain. The zero Hash is the chain's origin (the
// prev_hash of seq 1).
type Hash [32]byte

// String is the hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the origin hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler (hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	n, err := hex.Decode(h[:], b)
	if err != nil || n != len(h) {
		return Errorf(KindInvalid, "hash %q is not 64 hex digits", b)
	}
	return nil
}

// ParseHash parses the hex form (for ?hash= query parameters).
func ParseHash(s string) (Hash, error) {
	var h Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// Op is one entry of the operation log. Hash = SHA-256 over a canonical encoding of
// (Seq, PrevHash, Time, Type, Key, SHA-256(Value)) — see internal/oplog. Hashing the
// value's digest rather than the value lets the replication layer redact sensitive fields
// (ValueDigest then carries the original digest) while the consumer still verifies the chain.
//
// Sensitive content, which the replication API must filter by role:
//   - network.put: NetworkValue.PrivateKey ("private_key") — only a gateway serving that
//     network (and admin/follower replicas) may see it.
//   - peer.put: PeerValue.PresharedKey ("preshared_key") — gateways of that network need it.
//   - peer.replace: PeerReplaceValue.PresharedKey ("preshared_key"), as peer.put.
//   - token.put: TokenValue.Hash ("hash") — followers (to authenticate) and admins only;
//     gateways must not receive token ops in any form but redacted.
type Op struct {
	Seq      uint64          `json:"seq"`
	PrevHash Hash            `json:"prev_hash"`
	Hash     Hash            `json:"hash"`
	Time     time.Time       `json:"time"`
	Type     OpType          `json:"type"`
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value"`
	// ValueDigest is set only on a redacted op: the SHA-256 of the original value.
	ValueDigest *Hash `json:"value_digest,omitempty"`
}

// NetworkValue is the value of network.put: the network and, in clear, its private key.
type NetworkValue struct {
	Network
	PrivateKey Key `json:"private_key"` // SENSITIVE
}

// PeerValue is the value of peer.put.
type PeerValue struct {
	Peer
	PresharedKey *Key `json:"preshared_key,omitempty"` // SENSITIVE
}

// PeerReplaceValue is the value of peer.replace: the new peer, in full as in peer.put, and
// the public key of the peer of the same network it replaces. Applying it removes Replaces
// (absent is not an error) and puts the new peer; Replaces never equals the new key.
type PeerReplaceValue struct {
	PeerValue
	Replaces Key `json:"replaces"`
}

// TokenValue is the value of token.put. It never contains the secret, only its hash.
type TokenValue struct {
	Token
	Hash TokenHash `json:"hash"` // SENSITIVE
}

// DeleteValue is the value of the delete ops: enough to identify the record.
type DeleteValue struct {
	Network   string `json:"network,omitempty"`
	PublicKey *Key   `json:"public_key,omitempty"`
	TokenID   string `json:"token_id,omitempty"`
}

// NetworkValueOf builds the op value of n (revealing its private key on purpose).
func NetworkValueOf(n Network) NetworkValue {
	return NetworkValue{Network: n, PrivateKey: n.PrivateKey.Reveal()}
}

// ToNetwork rebuilds the domain network.
func (v NetworkValue) ToNetwork() Network {
	n := v.Network
	n.PrivateKey = NewSecretKey(v.PrivateKey)
	return n
}

// PeerValueOf builds the op value of p.
func PeerValueOf(p Peer) PeerValue { return PeerValue{Peer: p, PresharedKey: p.PresharedKey.Ptr()} }

// ToPeer rebuilds the domain peer.
func (v PeerValue) ToPeer() Peer {
	p := v.Peer
	p.PresharedKey = SecretKeyFrom(v.PresharedKey)
	return p
}

// TokenValueOf builds the op value of t.
func TokenValueOf(t Token) TokenValue { return TokenValue{Token: t, Hash: t.Hash} }

// ToToken rebuilds the domain token.
func (v TokenValue) ToToken() Token {
	t := v.Token
	t.Hash = v.Hash
	return t
}

// NetworkKey is the op key of a network.
func NetworkKey(name string) string { return "network/" + name }

// PeerKey is the op key of a peer. Base64 keys may contain '/', so the network comes first
// and the key is everything after the second '/'.
func PeerKey(network string, pub Key) string { return "peer/" + network + "/" + pub.String() }

// TokenKey is the op key of a token.
func TokenKey(id string) string { return "token/" + id }

// ParsePeerKey splits a PeerKey.
func ParsePeerKey(k string) (network string, pub Key, err error) {
	rest, ok := strings.CutPrefix(k, "peer/")
	if !ok {
		return "", Key{}, Errorf(KindInvalid, "op key %q is not a peer key", k)
	}
	network, b64, ok := strings.Cut(rest, "/")
	if !ok {
		return "", Key{}, Errorf(KindInvalid, "op key %q is not a peer key", k)
	}
	pub, err = ParseKey(b64)
	return network, pub, err
}

// Snapshot is the whole state at one point of the log: applying the ops after Seq to it
// gives the current state. It contains secrets (private keys, PSKs, token hashes): the
// replication API must filter it by role exactly like ops.
type Snapshot struct {
	Seq      uint64         `json:"seq"`
	Hash     Hash           `json:"hash"`
	Networks []NetworkValue `json:"networks"`
	Peers    []PeerValue    `json:"peers"`
	Tokens   []TokenValue   `json:"tokens"`
}
