package sessions

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func openVPNReport(n int, since time.Time) Report {
	r := Report{Gateway: "gw1", Time: since, OpenVPN: make([]OpenVPNClient, n)}
	for i := range r.OpenVPN {
		r.OpenVPN[i] = OpenVPNClient{Process: fmt.Sprintf("proc%d", i%2), CommonName: fmt.Sprintf("kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0L%05d=", i),
			IPv4: fmt.Sprintf("198.18.%d.%d", i/250, i%250+2), IPv6: fmt.Sprintf("fd00:8::%x", i+2),
			BytesReceived: int64(i) * 1000, BytesSent: int64(i) * 2000, ConnectedSince: since.Add(-time.Duration(i) * time.Second), Endpoint: "203.0.113.7:1194"}
	}
	return r
}

// BenchmarkIngestOpenVPN1000: the control plane's cost of one push listing 1000 OpenVPN
// clients that are all already open (the steady state: update bytes and last seen, look
// for clients that left).
func BenchmarkIngestOpenVPN1000(b *testing.B) {
	since := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	tr := New(Config{})
	r := openVPNReport(1000, since)
	tr.Ingest(r, nil)
	b.ReportAllocs()
	for b.Loop() {
		tr.Ingest(r, nil)
	}
}

// BenchmarkParseReportOpenVPN1000: decoding and validating the JSON of such a push.
func BenchmarkParseReportOpenVPN1000(b *testing.B) {
	body, err := json.Marshal(openVPNReport(1000, time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseReport(body); err != nil {
			b.Fatal(err)
		}
	}
}
