package wgdevtest

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// Logger returns a logger whose lines (wireguard-go's included) go to the test log, shown
// for failing tests or with -v. Lines logged after the test ended are dropped: background
// goroutines of a closed device may still log, and t.Log would then panic.
func Logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) }) // registered before the device's: runs after
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
