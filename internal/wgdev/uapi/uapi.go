// Package uapi speaks WireGuard's cross-platform configuration protocol (UAPI, the text
// protocol behind /var/run/wireguard/<dev>.sock and wireguard-go's IpcGet/IpcSet): it parses
// the output of a "get" operation and renders the body of an incremental "set" operation.
//
// The get output comes from another process (any UAPI socket) and is parsed defensively:
// every value is checked and an error names the line. The set body is built so that a peer
// whose allowed IPs change never has none: new prefixes are added first, then stale ones
// are removed one by one with wireguard-go's "allowed_ip=-PREFIX".
package uapi

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// State is a device as a UAPI get operation describes it.
type State struct {
	PrivateKey wirefleet.Key // zero: none
	ListenPort int
	FwMark     uint32
	Peers      []wgdev.PeerStatus
}

// maxLine bounds one line of get output; the longest legitimate line is an IPv6 endpoint
// with a zone, far below this.
const maxLine = 4096

// Parse reads the output of a get operation (see ParseString).
func Parse(r io.Reader) (State, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return State{}, fmt.Errorf("uapi get: read: %w", err)
	}
	return ParseString(string(b))
}

// ParseString parses the output of a get operation. It stops at a blank line (the end of
// a response on a socket); an "errno=N" line with N != 0 is returned as an error.
//
// Keys and values are substrings of in and the peers and their allowed IPs are carved
// from two allocations sized by counting, so reading 10k peers costs a handful of
// allocations rather than a few per line.
func ParseString(in string) (State, error) {
	var st State
	st.Peers = make([]wgdev.PeerStatus, 0, strings.Count(in, "public_key="))
	ips := make([]netip.Prefix, 0, strings.Count(in, "allowed_ip="))
	var peer *wgdev.PeerStatus
	var hsSec, hsNsec int64
	ipStart := 0
	flush := func() {
		if peer == nil {
			return
		}
		if hsSec != 0 || hsNsec != 0 {
			peer.LastHandshake = time.Unix(hsSec, hsNsec)
		}
		if len(ips) > ipStart {
			peer.AllowedIPs = ips[ipStart:len(ips):len(ips)]
		}
		st.Peers = append(st.Peers, *peer)
		peer, hsSec, hsNsec, ipStart = nil, 0, 0, len(ips)
	}
	var cur wgdev.PeerStatus
	for n := 1; in != ""; n++ {
		line, rest, _ := strings.Cut(in, "\n")
		in = rest
		if len(line) > maxLine {
			return State{}, fmt.Errorf("uapi get line %d: longer than %d bytes", n, maxLine)
		}
		if line == "" {
			break
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return State{}, fmt.Errorf("uapi get line %d: %q is not key=value", n, line)
		}
		switch {
		case key == "errno":
			if val != "0" {
				return State{}, fmt.Errorf("uapi get: device answered errno=%s", val)
			}
		case key == "public_key":
			flush()
			pk, err := parseHexKey(val)
			if err != nil {
				return State{}, fmt.Errorf("uapi get line %d: public_key: %w", n, err)
			}
			cur = wgdev.PeerStatus{Peer: wgdev.Peer{PublicKey: pk}}
			peer = &cur
		case peer == nil:
			if err := st.deviceLine(key, val); err != nil {
				return State{}, fmt.Errorf("uapi get line %d: %w", n, err)
			}
		case key == "allowed_ip":
			pr, err := netip.ParsePrefix(val)
			if err != nil {
				return State{}, fmt.Errorf("uapi get line %d (peer %s): allowed_ip %q: %w", n, peer.PublicKey, val, err)
			}
			ips = append(ips, pr)
		default:
			if err := peerLine(peer, &hsSec, &hsNsec, key, val); err != nil {
				return State{}, fmt.Errorf("uapi get line %d (peer %s): %w", n, peer.PublicKey, err)
			}
		}
	}
	flush()
	return st, nil
}

func (st *State) deviceLine(key, val string) error {
	switch key {
	case "private_key":
		k, err := parseHexKey(val)
		if err != nil {
			return fmt.Errorf("private_key: %w", err)
		}
		st.PrivateKey = k
	case "listen_port":
		p, err := strconv.ParseUint(val, 10, 16)
		if err != nil {
			return fmt.Errorf("listen_port %q: %w", val, err)
		}
		st.ListenPort = int(p)
	case "fwmark":
		m, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return fmt.Errorf("fwmark %q: %w", val, err)
		}
		st.FwMark = uint32(m)
	default:
		// Unknown device keys are skipped: newer implementations may add some.
	}
	return nil
}

func peerLine(p *wgdev.PeerStatus, hsSec, hsNsec *int64, key, val string) error {
	switch key {
	case "preshared_key":
		k, err := parseHexKey(val)
		if err != nil {
			return fmt.Errorf("preshared_key: %w", err)
		}
		if !k.IsZero() {
			psk := k // only a set key escapes to the heap
			p.PresharedKey = &psk
		}
	case "endpoint":
		ap, err := netip.ParseAddrPort(val)
		if err != nil {
			return fmt.Errorf("endpoint %q: %w", val, err)
		}
		p.Endpoint = ap
	case "last_handshake_time_sec":
		return parseInt(val, "last_handshake_time_sec", hsSec)
	case "last_handshake_time_nsec":
		if err := parseInt(val, "last_handshake_time_nsec", hsNsec); err != nil {
			return err
		}
		if *hsNsec >= int64(time.Second) {
			return fmt.Errorf("last_handshake_time_nsec %q is not below one second", val)
		}
	case "rx_bytes":
		return parseInt(val, "rx_bytes", &p.RxBytes)
	case "tx_bytes":
		return parseInt(val, "tx_bytes", &p.TxBytes)
	case "persistent_keepalive_interval":
		s, err := strconv.ParseUint(val, 10, 16)
		if err != nil {
			return fmt.Errorf("persistent_keepalive_interval %q: %w", val, err)
		}
		p.PersistentKeepalive = time.Duration(s) * time.Second
	case "protocol_version":
		if val != "1" {
			return fmt.Errorf("protocol_version %q is not supported (want 1)", val)
		}
	default:
		// Unknown peer keys are skipped, as wg(8) does.
	}
	return nil
}

func parseInt(val, name string, dst *int64) error {
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%s %q is not a non-negative integer", name, val)
	}
	*dst = n
	return nil
}

func parseHexKey(s string) (wirefleet.Key, error) {
	var k wirefleet.Key
	if len(s) != 2*wirefleet.KeyLen {
		return k, fmt.Errorf("want %d hex digits, got %d", 2*wirefleet.KeyLen, len(s))
	}
	for i := range k {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return k, fmt.Errorf("not hex: %q", s)
		}
		k[i] = hi<<4 | lo
	}
	return k, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
