package problem

import (
	"testing"

	"github.com/wirefleet/wirefleet"
)

// TestStatusTableComplete moved here from internal/api with the table it checks.
func TestStatusTableComplete(t *testing.T) {
	kinds := []wirefleet.Kind{wirefleet.KindInvalid, wirefleet.KindNotFound, wirefleet.KindConflict,
		wirefleet.KindUnauthorized, wirefleet.KindForbidden, wirefleet.KindUnavailable, wirefleet.KindInternal}
	want := []int{400, 404, 409, 401, 403, 503, 500}
	for i, k := range kinds {
		if got := statusOf[k]; got != want[i] {
			t.Errorf("statusOf[%s] = %d, want %d", k, got, want[i])
		}
	}
	if len(statusOf) != len(kinds) {
		t.Errorf("statusOf has %d entries, want %d", len(statusOf), len(kinds))
	}
}
