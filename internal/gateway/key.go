package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/wirefleet/wirefleet"
)

// keyFile is the private key's file name in the state directory: base64, as `wg genkey`
// writes it, so an operator can inspect it with `wg pubkey < private.key`.
const keyFile = "private.key"

// loadOrCreateKey returns the device's private key from dir, generating and storing it on
// first start. A userspace device dies with the process; reusing the key means the peers'
// configurations (which name our public key) keep working after a restart.
func loadOrCreateKey(dir string, log *slog.Logger) (wirefleet.Key, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return wirefleet.Key{}, fmt.Errorf("-state-dir %q: %w", dir, err)
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("state directory is accessible to others; it holds the private key", "dir", dir, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
	path := filepath.Join(dir, keyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		st, err := os.Stat(path)
		if err != nil {
			return wirefleet.Key{}, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return wirefleet.Key{}, fmt.Errorf("-state-dir: private key %s has mode %04o; it must be readable by its owner only: chmod 600 %s", path, st.Mode().Perm(), path)
		}
		k, err := wirefleet.ParseKey(strings.TrimSpace(string(b)))
		if err != nil {
			return wirefleet.Key{}, fmt.Errorf("-state-dir: %s is not a WireGuard private key (%v); remove it to generate a new one", path, err)
		}
		return k, nil
	case errors.Is(err, fs.ErrNotExist):
		return createKey(path, log)
	default:
		return wirefleet.Key{}, fmt.Errorf("-state-dir: read private key: %w", err)
	}
}

// createKey writes a new key atomically: a crash leaves either no key or a whole one.
func createKey(path string, log *slog.Logger) (wirefleet.Key, error) {
	k, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		return k, err
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return k, fmt.Errorf("-state-dir: create private key: %w", err)
	}
	_, werr := f.WriteString(k.String() + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return k, fmt.Errorf("-state-dir: write private key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return k, fmt.Errorf("-state-dir: store private key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	log.Info("generated the device's private key", "path", path, "public_key", k.PublicKey())
	return k, nil
}
