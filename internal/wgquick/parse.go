package wgquick

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/wirefleet/wirefleet"
)

// MaxLineLen bounds one line; wg-quick files never come close, a hostile file cannot make
// the scanner allocate without limit.
const MaxLineLen = 64 << 10

// nameComment matches the peer-name comment conventions of common managers.
var nameComment = regexp.MustCompile(`(?i)^#+\s*(?:name|friendly_name|client)\s*[:=]?\s*(\S.*)$`)

type section int

const (
	secNone section = iota
	secInterface
	secPeer
)

// Parse reads a wg-quick config. Errors are wirefleet KindInvalid errors that name the line
// and what was wrong with it.
func Parse(r io.Reader) (*Config, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen)
	var (
		cfg         Config
		sec         = secNone
		seenIface   bool
		pendingName string // from a name comment seen outside a peer's keys
		peer        *Peer
		seenKeys    = map[wirefleet.Key]int{}
		lineNo      int
	)
	finishPeer := func() error {
		if peer == nil {
			return nil
		}
		if peer.PublicKey.IsZero() {
			return invalid(peer.Line, "[Peer] has no PublicKey")
		}
		if prev, dup := seenKeys[peer.PublicKey]; dup {
			return invalid(peer.Line, "peer %s is already defined on line %d", peer.PublicKey, prev)
		}
		seenKeys[peer.PublicKey] = peer.Line
		cfg.Peers = append(cfg.Peers, *peer)
		peer = nil
		return nil
	}
	for sc.Scan() {
		lineNo++
		raw := strings.TrimSpace(sc.Text())
		if lineNo == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff") // files saved by Windows editors
		}
		if strings.HasPrefix(raw, "#") || strings.HasPrefix(raw, ";") {
			if m := nameComment.FindStringSubmatch(raw); m != nil {
				// A lone CR inside a line would not survive rendering; names are labels.
				name := strings.TrimSpace(strings.ReplaceAll(m[1], "\r", " "))
				if peer != nil && peer.Name == "" {
					peer.Name = name
				} else {
					pendingName = name
				}
			}
			continue
		}
		line := raw
		if i := strings.IndexByte(line, '#'); i >= 0 { // wg(8) strips trailing comments
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, invalid(lineNo, "section header %q is not closed with ]", line)
			}
			if err := finishPeer(); err != nil {
				return nil, err
			}
			switch strings.ToLower(strings.TrimSpace(line[1 : len(line)-1])) {
			case "interface":
				if seenIface {
					return nil, invalid(lineNo, "second [Interface] section; a file has exactly one")
				}
				seenIface, sec = true, secInterface
			case "peer":
				sec = secPeer
				peer = &Peer{Line: lineNo, Name: pendingName}
			default:
				return nil, invalid(lineNo, "unknown section %s; want [Interface] or [Peer]", line)
			}
			pendingName = ""
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, invalid(lineNo, "%q is not a key = value line", line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		var err error
		switch sec {
		case secNone:
			return nil, invalid(lineNo, "%s is outside any section; start with [Interface]", key)
		case secInterface:
			err = parseInterfaceKey(&cfg.Interface, key, value, lineNo)
		case secPeer:
			err = parsePeerKey(peer, key, value, lineNo)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, invalid(lineNo+1, "%v", err)
	}
	if err := finishPeer(); err != nil {
		return nil, err
	}
	if !seenIface {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "no [Interface] section: this is not a wg-quick config")
	}
	return &cfg, nil
}

func parseInterfaceKey(in *Interface, key, value string, line int) error {
	var err error
	switch strings.ToLower(key) {
	case "privatekey":
		in.PrivateKey, err = parseKey(key, value, line)
	case "address":
		var ps []netip.Prefix
		ps, err = parsePrefixes(key, value, line, true)
		in.Addresses = append(in.Addresses, ps...)
	case "listenport":
		in.ListenPort, err = parseInt(key, value, line, 0, 65535)
	case "mtu":
		in.MTU, err = parseInt(key, value, line, 576, 65535)
	case "dns":
		in.DNS = append(in.DNS, splitList(value)...)
	default:
		in.Extra = append(in.Extra, KeyValue{Key: key, Value: value, Line: line})
	}
	return err
}

func parsePeerKey(p *Peer, key, value string, line int) error {
	var err error
	switch strings.ToLower(key) {
	case "publickey":
		p.PublicKey, err = parseKey(key, value, line)
	case "presharedkey":
		p.PresharedKey, err = parseKey(key, value, line)
	case "allowedips":
		var ps []netip.Prefix
		ps, err = parsePrefixes(key, value, line, false)
		p.AllowedIPs = append(p.AllowedIPs, ps...)
	case "endpoint":
		if value == "" || !strings.Contains(value, ":") {
			return invalid(line, "Endpoint %q is not host:port", value)
		}
		p.Endpoint = value
	case "persistentkeepalive":
		if strings.EqualFold(value, "off") {
			return nil
		}
		p.PersistentKeepalive, err = parseInt(key, value, line, 0, 65535)
	default:
		p.Extra = append(p.Extra, KeyValue{Key: key, Value: value, Line: line})
	}
	return err
}

func parseKey(name, value string, line int) (wirefleet.Key, error) {
	k, err := wirefleet.ParseKey(value)
	if err != nil {
		return k, invalid(line, "%s: %v", name, err)
	}
	return k, nil
}

// parsePrefixes reads a comma-separated CIDR list. Interface addresses keep their host bits
// (10.0.0.1/24 is "this host in that subnet"); a bare address means a single host.
func parsePrefixes(name, value string, line int, keepHost bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range splitList(value) {
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			p, err = netip.ParsePrefix(s)
			if err != nil {
				return nil, invalid(line, "%s: %q is not a CIDR (want e.g. 192.0.2.1/32)", name, s)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, invalid(line, "%s: %q is not an IP address or CIDR", name, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			return nil, invalid(line, "%s: %q is an IPv4-mapped IPv6 address; write it as IPv4", name, s)
		}
		if !keepHost {
			p = p.Masked()
		}
		out = append(out, p)
	}
	return out, nil
}

func parseInt(name, value string, line, lo, hi int) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil || n < lo || n > hi {
		return 0, invalid(line, "%s: %q is not a number between %d and %d", name, value, lo, hi)
	}
	return n, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func invalid(line int, format string, args ...any) error {
	return wirefleet.Errorf(wirefleet.KindInvalid, "line %d: %s", line, fmt.Sprintf(format, args...))
}
