package userspace

import (
	"net"
	"sync/atomic"
)

// watchConn is a UAPI connection that marks the device dirty unless everything the client
// sends is "get=1\n\n" (a read-only `wg show`): anything else (a `wg set`) may change peers
// behind the copy of allowed IPs the fast apply path relies on. It marks again after each
// reply, so a set that runs after a concurrent re-read is not missed.
type watchConn struct {
	net.Conn
	dirty   *atomic.Bool
	pending []byte // bytes of an incomplete "get=1\n\n"
	changed bool   // the client sent something other than a get
}

const getOp = "get=1\n\n"

func (c *watchConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for _, b := range p[:n] {
		if c.pending == nil {
			c.pending = make([]byte, 0, len(getOp))
		}
		if b != getOp[len(c.pending)] {
			c.changed = true
			c.dirty.Store(true)
			c.pending = c.pending[:0]
			continue
		}
		c.pending = append(c.pending, b)
		if len(c.pending) == len(getOp) {
			c.pending = c.pending[:0]
		}
	}
	return n, err
}

func (c *watchConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.changed {
		c.dirty.Store(true)
	}
	return n, err
}
