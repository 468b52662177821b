package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wirefleet/wirefleet"
)

// statusOf is THE table from error kinds to HTTP statuses. Every REST error goes through it;
// a kind missing here is a bug caught by TestStatusTableComplete.
var statusOf = map[wirefleet.Kind]int{
	wirefleet.KindInvalid:      http.StatusBadRequest,
	wirefleet.KindNotFound:     http.StatusNotFound,
	wirefleet.KindConflict:     http.StatusConflict,
	wirefleet.KindUnauthorized: http.StatusUnauthorized,
	wirefleet.KindForbidden:    http.StatusForbidden,
	wirefleet.KindUnavailable:  http.StatusServiceUnavailable,
	wirefleet.KindInternal:     http.StatusInternalServerError,
}

// Problem is an RFC 9457 problem details object. Kind is the wirefleet error kind, so that
// clients (and the CLI) can branch on it without parsing the message.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Kind   string `json:"kind"`
}

// problemType is the URI reference of a kind; it points into docs/api.md.
func problemType(k wirefleet.Kind) string { return "https://wirefleet.dev/problems/" + string(k) }

// writeError renders err as application/problem+json. Internal errors are logged with
// their cause and shown to the client without it (no internals, no secrets leak).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind := wirefleet.KindOf(err)
	status, ok := statusOf[kind]
	if !ok {
		kind, status = wirefleet.KindInternal, http.StatusInternalServerError
	}
	detail := err.Error()
	var we *wirefleet.Error
	if kind == wirefleet.KindInternal || !errors.As(err, &we) {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		kind, status = wirefleet.KindInternal, http.StatusInternalServerError
		detail = "internal error; the server log has the details"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wirefleet"`)
	}
	writeProblem(w, Problem{
		Type:   problemType(kind),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Kind:   string(kind),
	})
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
