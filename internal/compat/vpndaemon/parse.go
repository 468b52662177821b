package vpndaemon

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wirefleet/wirefleet"
)

// MaxBodyBytes bounds a POST body. The portal's largest request (one key and two ip_net)
// is under 200 bytes; 64 KiB leaves room for peers with many prefixes and nothing more.
const MaxBodyBytes = 64 << 10

// maxEcho is the longest client value quoted back in an error message.
const maxEcho = 64

// badRequest is a client error: its message is the one line of the 400 response.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

// quote quotes a client value for an error message, shortened so a huge value cannot
// flood the response or the logs; %q keeps the message on one line.
func quote(s string) string {
	if len(s) > maxEcho {
		return fmt.Sprintf("%q… (%d bytes)", s[:maxEcho], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// readForm reads an application/x-www-form-urlencoded POST body of at most MaxBodyBytes.
// Values come from the body only (not the query string), decoded by the standard rules:
// repeated keys without "[]" (ip_net=…&ip_net=…), "+" is a space, "%2B" a plus.
func readForm(r *http.Request) (url.Values, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, badf("Content-Type %s is not supported: send application/x-www-form-urlencoded", quote(ct))
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, badf("cannot read request body: %v", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, badf("request body is larger than %d bytes", MaxBodyBytes)
	}
	return parseForm(string(body))
}

// parseForm decodes a urlencoded form.
func parseForm(body string) (url.Values, error) {
	v, err := url.ParseQuery(body)
	if err != nil {
		return nil, badf("request body is not a valid urlencoded form: %v", err)
	}
	return v, nil
}

// single returns the one value of a required form field.
func single(form url.Values, name string) (string, error) {
	vals := form[name]
	switch len(vals) {
	case 0:
		return "", badf("missing %s", name)
	case 1:
		return vals[0], nil
	default:
		return "", badf("%s given %d times, want exactly one", name, len(vals))
	}
}

// parsePublicKey validates a WireGuard public key: standard base64 of exactly 32 bytes
// (44 characters with one "=", as wg and the portal's validator produce).
func parsePublicKey(s string) (wirefleet.Key, error) {
	var k wirefleet.Key
	if s == "" {
		return k, badf("missing public_key")
	}
	if len(s) > 2*maxEcho {
		return k, badf("invalid public_key: %d characters long, want 44 characters of base64", len(s))
	}
	k, err := wirefleet.ParseKey(s)
	if err != nil {
		var we *wirefleet.Error
		if errors.As(err, &we) {
			return k, badf("invalid public_key: %s", we.Message)
		}
		return k, badf("invalid public_key: %v", err)
	}
	if k.IsZero() {
		// WireGuard refuses the all-zero key; say so here rather than fail on the device.
		return k, badf("invalid public_key: all 32 bytes are zero")
	}
	return k, nil
}

// parseIPNets validates every ip_net of add_peer: at least one, each a CIDR without host
// bits set (198.51.100.5/32 and 2001:db8::5/128 are fine, 198.51.100.5/24 is not), no zone,
// no IPv4-mapped IPv6. Duplicates are dropped; the order is kept.
func parseIPNets(vals []string) ([]netip.Prefix, error) {
	if len(vals) == 0 {
		return nil, badf("missing ip_net: give at least one CIDR such as 198.51.100.2/32")
	}
	out := make([]netip.Prefix, 0, len(vals))
	seen := make(map[netip.Prefix]bool, len(vals))
	for _, s := range vals {
		p, err := parseIPNet(s)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func parseIPNet(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, badf("invalid ip_net \"\": empty, want a CIDR such as 198.51.100.2/32")
	}
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, badf("invalid ip_net %s: no prefix length, want a CIDR such as 198.51.100.2/32", quote(s))
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, badf("invalid ip_net %s: not a CIDR such as 198.51.100.2/32 or 2001:db8::2/128", quote(s))
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, badf("invalid ip_net %s: IPv4-mapped IPv6 address, write the IPv4 CIDR instead", quote(s))
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, badf("invalid ip_net %s: host bits set, use %s or a /%d", quote(s), m, p.Addr().BitLen())
	}
	return p, nil
}

// parseCommonName validates an OpenVPN client certificate CN for disconnect_client: any
// non-empty UTF-8 string without whitespace or control characters. The CN is sent to the
// management interface as "kill <CN>", so a space or newline would change the command.
func parseCommonName(s string) (string, error) {
	if s == "" {
		return "", badf("missing common_name")
	}
	if !utf8.ValidString(s) {
		return "", badf("invalid common_name %s: not valid UTF-8", quote(s))
	}
	if len(s) > 256 {
		return "", badf("invalid common_name: %d bytes long, at most 256", len(s))
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", badf("invalid common_name %s: contains whitespace or a control character", quote(s))
		}
	}
	return s, nil
}

// parseYesNo reads an optional yes/no query parameter ("no" when absent).
func parseYesNo(q url.Values, name string) (bool, error) {
	vals, ok := q[name]
	if !ok {
		return false, nil
	}
	if len(vals) != 1 {
		return false, badf("%s given %d times, want once: yes or no", name, len(vals))
	}
	switch vals[0] {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, badf("invalid %s %s: want yes or no", name, quote(vals[0]))
}
