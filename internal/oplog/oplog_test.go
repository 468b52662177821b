package oplog

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
)

func chain(n int) []wirefleet.Op {
	var h Head
	t := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600))
	var ops []wirefleet.Op
	for i := range n {
		op := h.Next(t.Add(time.Duration(i)*time.Second), wirefleet.OpPeerPut, "peer/net/k"+string(rune('a'+i)), []byte(`{"n":`+string(rune('0'+i%10))+`}`))
		ops = append(ops, op)
		h = Head{op.Seq, op.Hash}
	}
	return ops
}

func TestChainVerifies(t *testing.T) {
	ops := chain(5)
	h, err := Verify(Head{}, ops)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != 5 || h.Hash != ops[4].Hash {
		t.Errorf("head = %+v", h)
	}
	if ops[0].Time.Nanosecond()%1000 != 0 || ops[0].Time.Location() != time.UTC {
		t.Errorf("op time %v not normalised to UTC µs", ops[0].Time)
	}
	// A suffix verifies from the op before it (what a follower does after a snapshot).
	if _, err := Verify(Head{ops[1].Seq, ops[1].Hash}, ops[2:]); err != nil {
		t.Errorf("suffix: %v", err)
	}
	// Survives a JSON round trip (the NDJSON stream).
	b, _ := json.Marshal(ops)
	var back []wirefleet.Op
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(Head{}, back); err != nil {
		t.Errorf("after JSON round trip: %v", err)
	}
}

func TestTamperAndDivergence(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(ops []wirefleet.Op) (Head, []wirefleet.Op)
		want   string
	}{
		{"value changed", func(ops []wirefleet.Op) (Head, []wirefleet.Op) {
			ops[2].Value = []byte(`{"n":9}`)
			return Head{}, ops
		}, "altered"},
		{"key changed", func(ops []wirefleet.Op) (Head, []wirefleet.Op) {
			ops[1].Key = "peer/net/zz"
			return Head{}, ops
		}, "altered"},
		{"time changed", func(ops []wirefleet.Op) (Head, []wirefleet.Op) {
			ops[3].Time = ops[3].Time.Add(time.Microsecond)
			return Head{}, ops
		}, "altered"},
		{"gap", func(ops []wirefleet.Op) (Head, []wirefleet.Op) {
			return Head{}, append(ops[:2:2], ops[3:]...)
		}, "gap"},
		{"diverged: same seq, other history", func(ops []wirefleet.Op) (Head, []wirefleet.Op) {
			// A consumer at seq 2 of another history continues with this log's op 3.
			other := chain(2)
			other[1] = Head{other[0].Seq, other[0].Hash}.Next(time.Now(), wirefleet.OpPeerDelete, "x", []byte(`{}`))
			return Head{other[1].Seq, other[1].Hash}, ops[2:]
		}, "diverged"},
		{"rehashed op without relinking", func(ops []wirefleet.Op) (Head, []wirefleet.Op) {
			// A forger recomputes op 2's hash after changing it; op 3 no longer links.
			ops[1].Value = []byte(`{"forged":true}`)
			ops[1].Hash = ComputeHash(ops[1].Seq, ops[1].PrevHash, ops[1].Time, ops[1].Type, ops[1].Key, Digest(ops[1].Value))
			return Head{}, ops
		}, "diverged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, ops := tc.mutate(chain(5))
			_, err := Verify(from, ops)
			if !wirefleet.IsKind(err, wirefleet.KindConflict) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify = %v, want a conflict mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRedactKeepsChain(t *testing.T) {
	ops := chain(3)
	ops[1] = Redact(ops[1], []byte(`{"redacted":true}`))
	if _, err := Verify(Head{}, ops); err != nil {
		t.Fatalf("redacted chain: %v", err)
	}
	// Redacting twice keeps the original digest.
	ops[1] = Redact(ops[1], []byte(`{}`))
	if _, err := Verify(Head{}, ops); err != nil {
		t.Fatalf("twice redacted chain: %v", err)
	}
	// A wrong digest is caught.
	bad := Digest([]byte("other"))
	ops[1].ValueDigest = &bad
	if _, err := Verify(Head{}, ops); err == nil {
		t.Fatal("a forged value digest verified")
	}
}

func TestNotifier(t *testing.T) {
	n := NewNotifier(3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Wait(ctx, 2); err != nil {
		t.Fatalf("Wait below head: %v", err)
	}
	done := make(chan error, 3)
	for range 3 {
		go func() { done <- n.Wait(ctx, 3) }()
	}
	n.Publish(3) // no advance: nobody wakes
	select {
	case err := <-done:
		t.Fatalf("woke without a new op: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	n.Publish(4)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	short, c2 := context.WithCancel(ctx)
	c2()
	if err := n.Wait(short, 4); err == nil {
		t.Error("Wait ignored a cancelled context")
	}
	if n.Seq() != 4 {
		t.Errorf("Seq = %d", n.Seq())
	}
}

func BenchmarkNext(b *testing.B) {
	v := []byte(`{"network":"net","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","addresses":["198.51.100.2","2001:db8::2"]}`)
	var h Head
	now := time.Now()
	for b.Loop() {
		op := h.Next(now, wirefleet.OpPeerPut, "peer/net/x", v)
		h = Head{op.Seq, op.Hash}
	}
}
