package autowg

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/wirefleet/wirefleet"
)

// keyRE is a canonical base64 WireGuard key: 32 bytes, padding, and last character with
// the two unused bits clear (so one key has one spelling, and a key is never two names).
var keyRE = regexp.MustCompile(`^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$`)

// ParseKeyBody parses a registration body: a canonical base64 public key, optionally
// followed by whitespace. The all-zero key is refused. Errors are one line for the device.
func ParseKeyBody(b []byte) (wirefleet.Key, error) {
	s := strings.TrimRight(string(b), " \t\r\n")
	if s == "" {
		return wirefleet.Key{}, errors.New("empty body: send the base64 WireGuard public key")
	}
	if !keyRE.MatchString(s) {
		return wirefleet.Key{}, errors.New("body is not a base64 WireGuard public key (44 characters, 32 bytes)")
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != wirefleet.KeyLen {
		return wirefleet.Key{}, errors.New("body is not a base64 WireGuard public key (44 characters, 32 bytes)")
	}
	var k wirefleet.Key
	copy(k[:], raw)
	if k.IsZero() {
		return wirefleet.Key{}, errors.New("the all-zero key is not a public key")
	}
	return k, nil
}

// maxSubject bounds a subject header (Go's own limit on header size is far larger).
const maxSubject = 4096

// SubjectCN returns the CN of a distinguished name in the RFC 4514 string form that
// Caddy's {http.request.tls.client.subject} (Go's pkix.Name.String) produces, e.g.
// "SERIALNUMBER=SN0042,CN=device-7,O=Org": RDNs separated by ',' (or '+' inside one RDN),
// values escaped with '\' (a special character or two hex digits) or quoted. The CN may
// stand anywhere. No CN, more than one CN, or a malformed subject is an error.
func SubjectCN(subject string) (string, error) {
	if len(subject) > maxSubject {
		return "", errors.New("subject too long")
	}
	s := strings.TrimLeft(subject, " ")
	if strings.TrimSpace(s) == "" {
		return "", errors.New("empty subject")
	}
	var cn string
	found := false
	for i := 0; i < len(s); {
		// attribute type
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return "", errors.New("subject: attribute without '='")
		}
		typ := strings.TrimSpace(s[i : i+eq])
		if typ == "" {
			return "", errors.New("subject: empty attribute type")
		}
		i += eq + 1
		val, n, err := parseValue(s[i:])
		if err != nil {
			return "", err
		}
		i += n
		if strings.EqualFold(typ, "CN") || typ == "2.5.4.3" || strings.EqualFold(typ, "OID.2.5.4.3") {
			if found {
				return "", errors.New("subject has more than one CN")
			}
			cn, found = val, true
		}
		if i < len(s) {
			// parseValue stopped at a separator
			i++
			if i == len(s) {
				return "", errors.New("subject ends with a separator")
			}
		}
	}
	if !found {
		return "", errors.New("subject has no CN")
	}
	if !utf8.ValidString(cn) {
		return "", errors.New("subject: the CN is not valid UTF-8")
	}
	return cn, nil
}

// parseValue reads one attribute value up to an unescaped ',' or '+' (not consumed) and
// returns it unescaped with the number of bytes read.
func parseValue(s string) (string, int, error) {
	var b strings.Builder
	i := 0
	// leading spaces are insignificant unless escaped
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i < len(s) && s[i] == '"' {
		i++
		for {
			if i >= len(s) {
				return "", 0, errors.New("subject: unterminated quoted value")
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				r, n, err := unescape(s[i:])
				if err != nil {
					return "", 0, err
				}
				b.WriteByte(r)
				i += n
				continue
			}
			b.WriteByte(c)
			i++
		}
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i < len(s) && s[i] != ',' && s[i] != '+' {
			return "", 0, errors.New("subject: text after a quoted value")
		}
		return b.String(), i, nil
	}
	trailing := 0 // unescaped trailing spaces, dropped
	for i < len(s) {
		c := s[i]
		switch c {
		case ',', '+':
			v := b.String()
			return v[:len(v)-trailing], i, nil
		case '\\':
			r, n, err := unescape(s[i:])
			if err != nil {
				return "", 0, err
			}
			b.WriteByte(r)
			i += n
			trailing = 0
			continue
		case '"', ';', '<', '>':
			return "", 0, errors.New("subject: unescaped special character in a value")
		}
		b.WriteByte(c)
		if c == ' ' {
			trailing++
		} else {
			trailing = 0
		}
		i++
	}
	v := b.String()
	return v[:len(v)-trailing], i, nil
}

// unescape decodes "\c" or "\XX" at the start of s.
func unescape(s string) (byte, int, error) {
	if len(s) < 2 {
		return 0, 0, errors.New("subject: dangling '\\'")
	}
	if h, ok := hexVal(s[1]); ok && len(s) >= 3 {
		if l, ok := hexVal(s[2]); ok {
			return h<<4 | l, 3, nil
		}
	}
	switch s[1] {
	case ',', '+', '"', '\\', '<', '>', ';', '=', ' ', '#':
		return s[1], 2, nil
	}
	return 0, 0, errors.New("subject: invalid escape")
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Pattern extracts the device name from a CN like upstream's re.match: anchored at the
// start of the CN only, capture group 1 is the name.
type Pattern struct{ re *regexp.Regexp }

// DefaultPattern is upstream's default --cn-pattern.
const DefaultPattern = `([0-9a-zA-Z]+)`

// CompilePattern checks a --cn-pattern: it must compile and have a group 1.
func CompilePattern(p string) (Pattern, error) {
	if p == "" {
		p = DefaultPattern
	}
	re, err := regexp.Compile(`^(?:` + p + `)`)
	if err != nil {
		return Pattern{}, wirefleet.Errorf(wirefleet.KindInvalid, "cn-pattern %q does not compile: %v", p, err)
	}
	if re.NumSubexp() < 1 {
		return Pattern{}, wirefleet.Errorf(wirefleet.KindInvalid, "cn-pattern %q has no capture group: put the name in parentheses, like smart-toilet-(\\d+)", p)
	}
	return Pattern{re: re}, nil
}

// Name returns capture group 1 of the pattern on cn; false when the CN does not match or
// the group is empty or absent.
func (p Pattern) Name(cn string) (string, bool) {
	m := p.re.FindStringSubmatchIndex(cn)
	if m == nil || m[2] < 0 || m[3] <= m[2] {
		return "", false
	}
	return cn[m[2]:m[3]], true
}

// String returns the pattern as given.
func (p Pattern) String() string {
	if p.re == nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(p.re.String(), "^(?:"), ")")
}

// CanonicalName ASCII-lower-cases a name; non-ASCII or control characters are an error.
func CanonicalName(name string) (string, error) {
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 || name[i] < 0x20 || name[i] == 0x7f {
			return "", errors.New("the device name from the certificate is not printable ASCII")
		}
	}
	if len(name) > wirefleet.MaxNameLen {
		return "", errors.New("the device name from the certificate is longer than 64 characters")
	}
	return strings.ToLower(name), nil
}
