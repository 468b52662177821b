package enabler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/wirefleet/wirefleet"
)

// MaxBodyBytes is body-parser's default limit ("100kb"), which upstream uses.
const MaxBodyBytes = 100 * 1024

// field is one request body field as upstream's JavaScript would see it.
type field struct {
	present bool   // present and truthy in JavaScript terms (not missing/null/""/0/false)
	str     string // the value when it is a string
	kind    string // "" for a string, else the JSON type name ("array", "object", "number", "boolean")
}

// body is a decoded request body: its fields by name (unknown ones are ignored later).
type body map[string]field

// errTooLarge and errMalformed are answered as 413 and 400.
var errTooLarge = errors.New("request entity too large")

type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }

// readBody decodes a JSON or application/x-www-form-urlencoded body, as express.json()
// and express.urlencoded() do upstream; any other content type gives no fields (upstream's
// req.body is then {}). Form fields are strict strings: "a[b]=1" is a field named "a[b]",
// never an object, and a repeated field is an array (an invalid key).
func readBody(w http.ResponseWriter, r *http.Request) (body, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, &malformedError{"cannot read the request body: " + err.Error()}
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/json":
		return decodeJSON(raw)
	case mt == "application/x-www-form-urlencoded":
		return decodeForm(raw)
	default:
		return body{}, nil
	}
}

// decodeJSON decodes a JSON body. A valid JSON value that is not an object has no fields
// (upstream then reports the missing key); invalid JSON is an error.
func decodeJSON(raw []byte) (body, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return body{}, nil // body-parser treats an empty body as {}
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, &malformedError{"Malformed JSON in the request body: " + err.Error()}
	}
	if dec.More() {
		return nil, &malformedError{"Malformed JSON in the request body: unexpected data after the top-level value"}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return body{}, nil
	}
	b := make(body, len(obj))
	for k, val := range obj {
		b[k] = jsonField(val)
	}
	return b, nil
}

// jsonField classifies a JSON value by JavaScript truthiness: null, "", 0 and false are
// "missing" (upstream's `if (!publicKey)`), any other non-string is the wrong type.
func jsonField(v any) field {
	switch x := v.(type) {
	case nil:
		return field{}
	case string:
		return field{present: x != "", str: x}
	case bool:
		return field{present: x, kind: "boolean"}
	case json.Number:
		f, err := x.Float64()
		zero := err == nil && f == 0
		return field{present: !zero, kind: "number"}
	case []any:
		return field{present: true, kind: "array"}
	default:
		return field{present: true, kind: "object"}
	}
}

func decodeForm(raw []byte) (body, error) {
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, &malformedError{"Malformed application/x-www-form-urlencoded request body: " + err.Error()}
	}
	b := make(body, len(vals))
	for k, vs := range vals {
		switch len(vs) {
		case 1:
			b[k] = field{present: vs[0] != "", str: vs[0]}
		default:
			b[k] = field{present: true, kind: "array"}
		}
	}
	return b, nil
}

// Messages of the spec (upstream's, typo included: clients match on them).
const (
	msgKeyNeeded  = "The peer's public key is needed"
	msgCapacity   = "Maximum number of clients reached. Not possible no add a new client"
	msgPeerAdded  = "Peer added successfully"
	keyFormatHint = "a WireGuard key is 44 characters of standard base64 encoding 32 bytes"
)

func msgExists(k wirefleet.Key) string { return fmt.Sprintf("The client with public key %s exists", k) }
func msgNotFound(k wirefleet.Key) string {
	return fmt.Sprintf("Client with public key %s not found", k)
}

// keyProblem says what is wrong with s as a key without echoing it: the input may be
// anything up to 100 kB, shell metacharacters included.
func keyProblem(s string) string {
	switch {
	case strings.TrimSpace(s) != s:
		return "it has leading or trailing whitespace"
	case len(s) != 44:
		return fmt.Sprintf("it is %d characters long", len(s))
	default:
		return "it is not canonical standard base64 of 32 bytes"
	}
}

// publicKeyField extracts the client's public key. The error is the 400 message.
func publicKeyField(b body) (wirefleet.Key, string) {
	f := b["publicKey"]
	if !f.present {
		return wirefleet.Key{}, msgKeyNeeded
	}
	if f.kind != "" {
		return wirefleet.Key{}, fmt.Sprintf("The public key is invalid: it is a JSON %s, not a string; %s, like the output of wg pubkey", f.kind, keyFormatHint)
	}
	k, err := wirefleet.ParseKey(f.str)
	if err != nil {
		return wirefleet.Key{}, fmt.Sprintf("The public key is invalid: %s; %s, like the output of wg pubkey", keyProblem(f.str), keyFormatHint)
	}
	if k.IsZero() {
		return wirefleet.Key{}, "The public key is invalid: it is all zeros; " + keyFormatHint + ", like the output of wg pubkey"
	}
	return k, ""
}

// presharedKeyField extracts the optional preshared key: missing, null or "" mean none
// (a deliberate relaxation of upstream); anything else must be a valid key.
func presharedKeyField(b body) (*wirefleet.Key, string) {
	f, ok := b["presharedKey"]
	if !ok || (f.kind == "" && f.str == "") {
		return nil, ""
	}
	const hint = ", like the output of wg genpsk; omit it, or send null or \"\", for none"
	if f.kind != "" {
		return nil, fmt.Sprintf("The preshared key is invalid: it is a JSON %s, not a string; %s%s", f.kind, keyFormatHint, hint)
	}
	k, err := wirefleet.ParseKey(f.str)
	if err != nil {
		return nil, fmt.Sprintf("The preshared key is invalid: %s; %s%s", keyProblem(f.str), keyFormatHint, hint)
	}
	if k.IsZero() {
		return nil, "The preshared key is invalid: it is all zeros; " + keyFormatHint + hint
	}
	return &k, ""
}
