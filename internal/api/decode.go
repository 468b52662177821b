package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/problem"
)

// Body size limits. Ordinary requests are small; an import carries a whole wg-quick file
// (about 200 bytes per peer, so 32 MiB is well above 100k peers).
const (
	maxBody       = 64 << 10
	maxImportBody = 32 << 20
)

// decodeJSON reads one JSON object into v: at most limit bytes, unknown fields rejected,
// nothing after the object. Errors are KindInvalid and say what to fix.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return wirefleet.Errorf(wirefleet.KindInvalid, "Content-Type %q is not supported: send application/json", ct)
		}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	return decodeStrict(body, v)
}

// decodeStrict is decodeJSON without HTTP, the part the fuzz target exercises.
func decodeStrict(rd io.Reader, v any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return wirefleet.Errorf(wirefleet.KindInvalid, "request body has data after the JSON object: send exactly one object")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syn    *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tooBig *http.MaxBytesError
		we     *wirefleet.Error
	)
	switch {
	case errors.Is(err, io.EOF):
		return wirefleet.Errorf(wirefleet.KindInvalid, "request body is empty: send a JSON object")
	case errors.As(err, &tooBig):
		return wirefleet.Errorf(wirefleet.KindInvalid, "request body is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &syn):
		return wirefleet.Errorf(wirefleet.KindInvalid, "request body is not valid JSON (at byte %d): %v", syn.Offset, err)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return wirefleet.Errorf(wirefleet.KindInvalid, "field %q: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return wirefleet.Errorf(wirefleet.KindInvalid, "request body: expected %s, got JSON %s", typ.Type, typ.Value)
	case errors.As(err, &we):
		return err // a domain type's UnmarshalText (keys) already says what was wrong
	case errors.Is(err, io.ErrUnexpectedEOF):
		return wirefleet.Errorf(wirefleet.KindInvalid, "request body ends in the middle of the JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return wirefleet.Errorf(wirefleet.KindInvalid, "request body has %s; see /api/v1/openapi.json for the fields", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return wirefleet.Errorf(wirefleet.KindInvalid, "request body: %v", err)
	}
}

// writeJSON writes v with status, compact (the CLI pretty-prints; big lists stay small).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, Problem{Type: problem.Type(wirefleet.KindInternal), Title: "Internal Server Error",
			Status: 500, Kind: string(wirefleet.KindInternal), Detail: fmt.Sprintf("encode response: %v", err)})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
