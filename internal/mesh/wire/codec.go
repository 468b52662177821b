// Package wire is the mesh admin channel's on-the-wire format: messages, their encoding, and
// the sealing of every datagram with XChaCha20-Poly1305 under a key derived from the
// network's shared key.
//
// A datagram is magic(4) | nonce(24) | AEAD(plaintext, ad=magic). The plaintext is
// unixMilli(8, big endian) | type(1) | JSON body. A receiver drops a datagram that does not
// authenticate, whose timestamp is outside the window, or whose nonce it has seen within the
// window (the replay cache): the reference (wg_netmanager) only had the window, so a captured
// datagram could be replayed for 10 s.
package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// Magic starts every datagram; it is also the AEAD's additional data, so a datagram of a
// future version never decrypts as this one.
var Magic = [4]byte{'W', 'F', 'M', '1'}

// Window is how far a datagram's timestamp may be from the receiver's clock.
const Window = 10 * time.Second

// MaxDatagram is the largest datagram the channel sends or accepts.
const MaxDatagram = 60000

const headerLen = 4 + chacha20poly1305.NonceSizeX

// Errors of Open; callers count them but never answer them.
var (
	ErrShort    = errors.New("datagram too short")
	ErrMagic    = errors.New("not a mesh datagram")
	ErrAuth     = errors.New("datagram does not authenticate (wrong shared key?)")
	ErrTooOld   = errors.New("timestamp outside the window")
	ErrReplayed = errors.New("replayed datagram")
)

// Sealer seals and opens datagrams for one network. It is safe for concurrent use.
type Sealer struct {
	aead interface {
		Seal(dst, nonce, plaintext, ad []byte) []byte
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	}
	now func() time.Time

	mu     sync.Mutex // guards seen
	seen   map[[chacha20poly1305.NonceSizeX]byte]time.Time
	sweepT time.Time
}

// maxSeen bounds the replay cache; only holders of the shared key can fill it.
const maxSeen = 1 << 17

// NewSealer derives the channel key from the 32-byte shared key (HKDF-SHA256 with a
// context label, so the shared key is never used directly). now may be nil (time.Now).
func NewSealer(sharedKey []byte, now func() time.Time) (*Sealer, error) {
	if len(sharedKey) != 32 {
		return nil, fmt.Errorf("shared key is %d bytes, want 32", len(sharedKey))
	}
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, sharedKey, nil, []byte("wirefleet mesh admin channel v1")), key); err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Sealer{aead: aead, now: now, seen: map[[chacha20poly1305.NonceSizeX]byte]time.Time{}}, nil
}

// Seal encodes and encrypts one message.
func (s *Sealer) Seal(m Message) ([]byte, error) {
	body, err := encodeBody(m)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, 9, 9+len(body))
	binary.BigEndian.PutUint64(pt, uint64(s.now().UnixMilli()))
	pt[8] = byte(m.Type())
	pt = append(pt, body...)
	out := make([]byte, headerLen, headerLen+len(pt)+chacha20poly1305.Overhead)
	copy(out, Magic[:])
	if _, err := rand.Read(out[4:headerLen]); err != nil {
		return nil, err
	}
	out = s.aead.Seal(out, out[4:headerLen], pt, Magic[:])
	if len(out) > MaxDatagram {
		return nil, fmt.Errorf("message of type %d is %d bytes, over the %d-byte limit", m.Type(), len(out), MaxDatagram)
	}
	return out, nil
}

// Open authenticates, checks freshness and replay, and decodes one datagram.
func (s *Sealer) Open(b []byte) (Message, error) {
	if len(b) < headerLen+chacha20poly1305.Overhead+9 {
		return nil, ErrShort
	}
	if [4]byte(b[:4]) != Magic {
		return nil, ErrMagic
	}
	nonce := [chacha20poly1305.NonceSizeX]byte(b[4:headerLen])
	pt, err := s.aead.Open(nil, nonce[:], b[headerLen:], Magic[:])
	if err != nil {
		return nil, ErrAuth
	}
	now := s.now()
	ts := time.UnixMilli(int64(binary.BigEndian.Uint64(pt)))
	if d := now.Sub(ts); d > Window || d < -Window {
		return nil, ErrTooOld
	}
	if !s.remember(nonce, now) {
		return nil, ErrReplayed
	}
	return decodeBody(Type(pt[8]), pt[9:])
}

// remember records a nonce; false if it was seen already (or the cache is full).
func (s *Sealer) remember(n [chacha20poly1305.NonceSizeX]byte, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.sweepT) > Window {
		// anything older than two windows cannot pass the timestamp check any more
		for k, t := range s.seen {
			if now.Sub(t) > 2*Window {
				delete(s.seen, k)
			}
		}
		s.sweepT = now
	}
	if _, dup := s.seen[n]; dup {
		return false
	}
	if len(s.seen) >= maxSeen {
		return false
	}
	s.seen[n] = now
	return true
}
