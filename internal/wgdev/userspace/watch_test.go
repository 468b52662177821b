package userspace

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
)

func TestWatchConn(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		dirty  bool
	}{
		{"wg show", []string{"get=1\n\n"}, false},
		{"two gets, split oddly", []string{"ge", "t=1\n", "\nget=1", "\n\n"}, false},
		{"wg set", []string{"set=1\npublic_key=00\n\n"}, true},
		{"get then set", []string{"get=1\n\nset=1\n\n"}, true},
		{"garbage", []string{"hello\n"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			var dirty atomic.Bool
			w := &watchConn{Conn: server, dirty: &dirty}
			go func() {
				for _, c := range tc.chunks {
					client.Write([]byte(c))
				}
				client.Close()
			}()
			if _, err := io.ReadAll(w); err != nil {
				t.Fatal(err)
			}
			if dirty.Load() != tc.dirty {
				t.Errorf("dirty = %v, want %v", dirty.Load(), tc.dirty)
			}
		})
	}
}
