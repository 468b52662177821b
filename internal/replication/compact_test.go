package replication

import (
	"context"
	"testing"
	"time"
)

func TestCompactorByCountAndAge(t *testing.T) {
	src := newMemSource()
	for range 5 {
		fill(t, src) // 25 ops, one second apart
	}
	op10, _ := src.Op(context.Background(), 10)
	tests := []struct {
		name    string
		c       Compactor
		through uint64
	}{
		{"nothing kept limit", Compactor{}, 0},
		{"keep 20 ops", Compactor{KeepOps: 20}, 5},
		{"keep more ops than exist", Compactor{KeepOps: 100}, 0},
		// Ops 1..9 are older than op 10's time; op 10 itself is kept.
		{"keep by age", Compactor{KeepAge: time.Hour, Now: func() time.Time { return op10.Time.Add(time.Hour) }}, 9},
		{"either limit", Compactor{KeepOps: 20, KeepAge: time.Hour, Now: func() time.Time { return op10.Time.Add(time.Hour) }}, 9},
	}
	for _, tt := range tests {
		tt.c.Log = src
		got, err := tt.c.Through(context.Background())
		if err != nil || got != tt.through {
			t.Errorf("%s: through %d (%v), want %d", tt.name, got, err, tt.through)
		}
	}
	c := Compactor{Log: src, KeepOps: 20}
	if n, err := c.Compact(context.Background()); n != 5 || err != nil {
		t.Fatalf("compact: %d %v", n, err)
	}
	if n, _ := c.Compact(context.Background()); n != 0 {
		t.Errorf("second compaction deleted %d", n)
	}
}

func TestConsumerAtTheLogBaseContinues(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	op3, _ := src.Op(context.Background(), 3)
	src.compact(3)
	srv, _ := server(t, src)
	// Exactly at the base: op 3 is gone but its hash is kept, the stream goes on.
	lines := readLines(t, srv.URL+LogPath+"?after=3&hash="+op3.Hash.String(), "admin", 2)
	if lines[0].Seq != 4 || lines[1].Seq != 5 {
		t.Errorf("stream after the base: %+v", lines)
	}
	var p Problem
	if code := getJSON(t, srv.URL+LogPath+"?after=3&hash="+lines[0].Hash.String(), "admin", &p); code != 409 || p.Reason != ReasonDiverged {
		t.Errorf("wrong hash at the base: %d %+v", code, p)
	}
}
