package mesh

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Files in the state directory.
const (
	identityFile = "identity.key"  // base64 Ed25519 seed, 0600
	bindingsFile = "bindings.json" // TOFU bindings wg IP -> identity
	socketFile   = "mesh.sock"     // control socket of the running node
)

// LoadIdentity reads the node's Ed25519 identity from dir, creating it (0600) on first use.
func LoadIdentity(dir string) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	p := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(p)
	if err == nil {
		seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("%s is not a base64 Ed25519 seed; move it away to make a new identity (other nodes will then refuse this node's wg IP until an operator runs 'wirefleet mesh forget')", p)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(p, []byte(base64.StdEncoding.EncodeToString(seed)+"\n")); err != nil {
		return nil, fmt.Errorf("write identity: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Bindings is the TOFU table: a wg IP belongs to the first identity that claimed it. It is
// persisted on every change so a restart keeps refusing takeovers.
type Bindings struct {
	path string
	mu   sync.Mutex // guards m
	m    map[netip.Addr]ed25519.PublicKey
}

// OpenBindings loads dir/bindings.json (missing: empty).
func OpenBindings(dir string) (*Bindings, error) {
	b := &Bindings{path: filepath.Join(dir, bindingsFile), m: map[netip.Addr]ed25519.PublicKey{}}
	raw, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	var file map[string]string
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, fmt.Errorf("%s: %w (fix or remove the file)", b.path, err)
	}
	for ip, id := range file {
		a, err1 := netip.ParseAddr(ip)
		k, err2 := base64.StdEncoding.DecodeString(id)
		if err1 != nil || err2 != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%s: bad entry %q: %q", b.path, ip, id)
		}
		b.m[a] = ed25519.PublicKey(k)
	}
	return b, nil
}

// Claim binds ip to id if it is free. It returns false when ip is bound to another identity.
func (b *Bindings) Claim(ip netip.Addr, id ed25519.PublicKey) (ok bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, found := b.m[ip]; found {
		return cur.Equal(id), nil
	}
	b.m[ip] = append(ed25519.PublicKey(nil), id...)
	return true, b.saveLocked()
}

// Lookup returns the identity bound to ip.
func (b *Bindings) Lookup(ip netip.Addr) (ed25519.PublicKey, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.m[ip]
	return k, ok
}

// Forget releases ip; it reports whether it was bound.
func (b *Bindings) Forget(ip netip.Addr) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[ip]; !ok {
		return false, nil
	}
	delete(b.m, ip)
	return true, b.saveLocked()
}

// All returns every binding, sorted by address.
func (b *Bindings) All() []netip.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]netip.Addr, 0, len(b.m))
	for a := range b.m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

func (b *Bindings) saveLocked() error {
	file := make(map[string]string, len(b.m))
	for ip, id := range b.m {
		file[ip.String()] = base64.StdEncoding.EncodeToString(id)
	}
	raw, _ := json.MarshalIndent(file, "", "  ")
	return writeFileAtomic(b.path, append(raw, '\n'))
}

func writeFileAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
