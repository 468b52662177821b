package wgdevtest

import (
	"testing"

	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// The in-memory device passes the suite too: the fake must not teach the layers above
// anything a real device would not do.
func TestMemoryConformance(t *testing.T) {
	Run(t, func(t *testing.T) wgdev.Device { return NewMemory("mem0") })
}
