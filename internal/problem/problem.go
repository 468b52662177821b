// Package problem is Wirefleet's REST error format: RFC 9457 problem details
// (application/problem+json) and THE table from error kinds to HTTP statuses. The API and
// the replication routes mounted next to it both answer through it, so a kind maps to the
// same status, and an internal error hides its cause the same way, on every route.
package problem

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wirefleet/wirefleet"
)

// statusOf is THE table from error kinds to HTTP statuses; a kind missing here is a bug
// caught by TestStatusTableComplete.
var statusOf = map[wirefleet.Kind]int{
	wirefleet.KindInvalid:      http.StatusBadRequest,
	wirefleet.KindNotFound:     http.StatusNotFound,
	wirefleet.KindConflict:     http.StatusConflict,
	wirefleet.KindUnauthorized: http.StatusUnauthorized,
	wirefleet.KindForbidden:    http.StatusForbidden,
	wirefleet.KindUnavailable:  http.StatusServiceUnavailable,
	wirefleet.KindInternal:     http.StatusInternalServerError,
}

// Details is an RFC 9457 problem details object. Kind is the wirefleet error kind, so that
// clients (and the CLI) can branch on it without parsing the message.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Kind   string `json:"kind"`
}

// Type is the URI reference of a kind; it points into docs/api.md.
func Type(k wirefleet.Kind) string { return "https://wirefleet.dev/problems/" + string(k) }

// Of is what a client may see of err: its kind, HTTP status and detail. An internal error,
// an error of a kind the table lacks, or one that is not a *wirefleet.Error (a cause from
// below: driver, I/O …) becomes KindInternal and 500 with a detail that says nothing of
// it; hidden reports that case, in which the caller logs err with its cause.
func Of(err error) (kind wirefleet.Kind, status int, detail string, hidden bool) {
	kind = wirefleet.KindOf(err)
	status, ok := statusOf[kind]
	var we *wirefleet.Error
	if !ok || kind == wirefleet.KindInternal || !errors.As(err, &we) {
		return wirefleet.KindInternal, http.StatusInternalServerError, "internal error; the server log has the details", true
	}
	return kind, status, err.Error(), false
}

// Write sends body (Details, or a superset of it) as application/problem+json with
// status; a 401 also carries the Bearer challenge.
func Write(w http.ResponseWriter, status int, body any) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wirefleet"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
