package api

import (
	"net/http"

	"github.com/wirefleet/wirefleet/internal/problem"
)

// Problem is the body of every REST error: RFC 9457 problem details with the wirefleet
// error kind. The kind→status table lives in package problem, shared with replication.
type Problem = problem.Details

// writeError renders err as application/problem+json. Internal errors are logged with
// their cause and shown to the client without it (no internals, no secrets leak).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind, status, detail, hidden := problem.Of(err)
	if hidden {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, Problem{
		Type:   problem.Type(kind),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Kind:   string(kind),
	})
}

func writeProblem(w http.ResponseWriter, p Problem) { problem.Write(w, p.Status, p) }
