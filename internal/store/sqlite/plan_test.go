package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/store"
)

// TestSweepUsesExpiryIndex: the expiry sweeper's query must not scan every peer (it runs
// every few seconds on the writer at 50k peers).
func TestSweepUsesExpiryIndex(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "plan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	no, now := false, time.Now()
	q, args := peerQuerySQL(store.PeerQuery{Expired: &no, ExpiresBefore: &now, Limit: 1000})
	rows, err := s.rdb.Query(`EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "peers_expiry") {
		t.Errorf("sweeper query plan %q does not use the peers_expiry index", got)
	}
}
