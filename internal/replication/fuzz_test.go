package replication

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/wirefleet/wirefleet/internal/oplog"
)

// FuzzParsePosition feeds the log route's query parameters (outside input).
func FuzzParsePosition(f *testing.F) {
	f.Add("0", "")
	f.Add("5", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	f.Add("-1", "zz")
	f.Add("18446744073709551616", "")
	f.Fuzz(func(t *testing.T, after, hash string) {
		r := httptest.NewRequest("GET", "/x", nil)
		q := r.URL.Query()
		q.Set("after", after)
		q.Set("hash", hash)
		r.URL.RawQuery = q.Encode()
		seq, h, err := parsePosition(r)
		if err == nil && seq > 0 && h.IsZero() && hash == "" {
			t.Fatalf("after=%q accepted without a hash", after)
		}
	})
}

// FuzzStreamLine feeds one line of the log stream (input from the network) to the
// consumer's decoder and chain check: it must never panic nor accept a broken link.
func FuzzStreamLine(f *testing.F) {
	f.Add([]byte(`{"seq":1,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"00","type":"elided"}`))
	f.Add([]byte(`{"type":"heartbeat","head":3}`))
	f.Add([]byte(`{"seq":1,"type":"peer.put","key":"peer/a/x","value":{"a":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Line
		if json.Unmarshal(b, &l) != nil {
			return
		}
		if err := verifyNext(oplog.Head{}, l.Op); err == nil && (l.Seq != 1 || !l.PrevHash.IsZero()) {
			t.Fatalf("accepted op %d with prev %s after the origin", l.Seq, l.PrevHash)
		}
	})
}
