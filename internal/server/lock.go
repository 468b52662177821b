package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/wirefleet/wirefleet"
)

// lockFile is the data directory's lock; the kernel releases it when the process dies, so
// a kill -9 never leaves a stale lock behind.
const lockFile = "wirefleet.lock"

// lockDataDir takes an exclusive, non-blocking flock on the data directory.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, wirefleet.Errorf(wirefleet.KindConflict,
				"data directory %s is in use by another wirefleet process (a running server?): use the API (-server, -token) instead of -data", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
