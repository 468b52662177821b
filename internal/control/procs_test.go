package control_test

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// cpuTime returns the CPU time (user+system) this process has used. The benchmarks report
// it per operation because the shared 2-core machine makes wall-clock figures depend on
// what else runs: CPU per op is the load-independent cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports cpu-µs/op at the end of a benchmark.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{cpuTime()} }

func (m cpuMeter) report(b *testing.B, ops int64) {
	if ops > 0 {
		b.ReportMetric(float64((cpuTime()-m.start).Microseconds())/float64(ops), "cpu-µs/op")
	}
}
