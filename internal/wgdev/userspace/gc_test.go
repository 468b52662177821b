package userspace

import (
	"runtime/debug"
	"testing"
)

func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

func TestRelaxGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	r1 := relaxGC()
	r2 := relaxGC() // a second device's bulk apply, concurrently
	if got := gcPercent(); got != bulkGCPercent {
		t.Fatalf("during a bulk apply GOGC = %d, want %d", got, bulkGCPercent)
	}
	r1()
	if got := gcPercent(); got != bulkGCPercent {
		t.Fatalf("one of two bulk applies done: GOGC = %d, want still %d", got, bulkGCPercent)
	}
	r2()
	if got := gcPercent(); got != 100 {
		t.Fatalf("after the bulk applies GOGC = %d, want 100 back", got)
	}
	for _, operator := range []int{-1, 800} { // GOGC=off or higher: left alone
		debug.SetGCPercent(operator)
		r := relaxGC()
		if got := gcPercent(); got != operator {
			t.Fatalf("GOGC %d set by the operator became %d during a bulk apply", operator, got)
		}
		r()
		if got := gcPercent(); got != operator {
			t.Fatalf("GOGC %d set by the operator became %d after a bulk apply", operator, got)
		}
	}
}
