package openvpn

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Status is the answer to "status 3" (tab-separated; "status 2" is the same with commas).
type Status struct {
	Title string    // TITLE: the OpenVPN version string
	Time  time.Time // TIME: when OpenVPN wrote the status (zero if absent)
	// Clients are the CLIENT_LIST rows, in OpenVPN's order. A client that has not finished
	// authenticating has the common name "UNDEF" and usually no virtual address yet.
	Clients     []Client
	Routes      []Route
	GlobalStats map[string]string
	// Skipped counts rows that could not be read (too few columns, bad numbers); they are
	// left out rather than failing the whole status.
	Skipped int
}

// Client is one CLIENT_LIST row.
type Client struct {
	CommonName     string
	RealAddress    string     // "192.0.2.2:52379", as OpenVPN prints it (may carry a proto prefix)
	VirtualIPv4    netip.Addr // invalid when OpenVPN reported none
	VirtualIPv6    netip.Addr // invalid when OpenVPN reported none
	BytesReceived  uint64     // by the server, from the client
	BytesSent      uint64     // by the server, to the client
	ConnectedSince time.Time  // from "Connected Since (time_t)"
	Username       string     // "UNDEF" without --auth-user-pass
	ClientID       uint64     // the CID of client-kill and >CLIENT notifications
	PeerID         uint64
	Cipher         string // data channel cipher
}

// Route is one ROUTING_TABLE row.
type Route struct {
	VirtualAddress string // an IP, a prefix (iroute) or, with tap, a MAC address
	CommonName     string
	RealAddress    string
	LastRef        time.Time
}

// UndefCommonName is what OpenVPN shows for a client that has not authenticated yet.
const UndefCommonName = "UNDEF"

// Column names of the HEADER rows of OpenVPN 2.4–2.6. The parser maps columns by these
// names, so added, removed or reordered columns in other versions are handled; the
// defaults below are used only when a status lacks its HEADER row.
const (
	colCommonName   = "Common Name"
	colRealAddress  = "Real Address"
	colVirtual      = "Virtual Address"
	colVirtualIPv6  = "Virtual IPv6 Address"
	colBytesRecv    = "Bytes Received"
	colBytesSent    = "Bytes Sent"
	colSinceTimeT   = "Connected Since (time_t)"
	colUsername     = "Username"
	colClientID     = "Client ID"
	colPeerID       = "Peer ID"
	colCipher       = "Data Channel Cipher"
	colLastRefTimeT = "Last Ref (time_t)"
)

var (
	defaultClientHeader = []string{colCommonName, colRealAddress, colVirtual, colVirtualIPv6,
		colBytesRecv, colBytesSent, "Connected Since", colSinceTimeT, colUsername, colClientID,
		colPeerID, colCipher}
	defaultRouteHeader = []string{colVirtual, colCommonName, colRealAddress, "Last Ref", colLastRefTimeT}
)

// ParseStatus reads the data lines of a "status 3" response (without the END line; an END
// line ends parsing). sep is the field separator: '\t' for status 3, ',' for status 2.
func ParseStatus(lines []string, sep byte) (*Status, error) {
	st := &Status{GlobalStats: map[string]string{}}
	headers := map[string]map[string]int{
		"CLIENT_LIST":   index(defaultClientHeader),
		"ROUTING_TABLE": index(defaultRouteHeader),
	}
	for n, raw := range lines {
		line := strings.TrimRight(raw, "\r\n")
		if line == "" {
			continue
		}
		if line == "END" {
			break
		}
		f := strings.Split(line, string(sep))
		switch f[0] {
		case "TITLE":
			if len(f) > 1 {
				st.Title = strings.Join(f[1:], string(sep))
			}
		case "TIME":
			if len(f) > 2 {
				if t, ok := parseTimeT(f[2]); ok {
					st.Time = t
				}
			}
		case "HEADER":
			if len(f) > 2 {
				headers[f[1]] = index(f[2:])
			}
		case "CLIENT_LIST":
			c, ok := parseClient(headers["CLIENT_LIST"], f[1:])
			if !ok {
				st.Skipped++
				continue
			}
			st.Clients = append(st.Clients, c)
		case "ROUTING_TABLE":
			r, ok := parseRoute(headers["ROUTING_TABLE"], f[1:])
			if !ok {
				st.Skipped++
				continue
			}
			st.Routes = append(st.Routes, r)
		case "GLOBAL_STATS":
			if len(f) > 2 {
				st.GlobalStats[f[1]] = strings.Join(f[2:], string(sep))
			}
		default:
			// "status 1" or another format answers with lines this parser does not know;
			// an OpenVPN-looking answer without any known tag is not a status 3.
			if n == 0 {
				return nil, fmt.Errorf("not a status 2/3 response: first line %q", truncate(line, 80))
			}
		}
	}
	return st, nil
}

func index(cols []string) map[string]int {
	m := make(map[string]int, len(cols))
	for i, c := range cols {
		m[c] = i
	}
	return m
}

// field returns the column named name, and whether the row has it.
func field(h map[string]int, row []string, name string) (string, bool) {
	i, ok := h[name]
	if !ok || i >= len(row) {
		return "", false
	}
	return row[i], true
}

func parseClient(h map[string]int, row []string) (Client, bool) {
	var c Client
	var ok bool
	// The common name is the one column a row cannot do without.
	if c.CommonName, ok = field(h, row, colCommonName); !ok {
		return Client{}, false
	}
	c.RealAddress, _ = field(h, row, colRealAddress)
	c.VirtualIPv4 = parseAddr(h, row, colVirtual)
	c.VirtualIPv6 = parseAddr(h, row, colVirtualIPv6)
	if !c.VirtualIPv4.Is4() {
		c.VirtualIPv4 = netip.Addr{}
	}
	if !c.VirtualIPv6.Is6() || c.VirtualIPv6.Is4In6() {
		c.VirtualIPv6 = netip.Addr{}
	}
	var good = true
	num := func(name string) uint64 {
		s, present := field(h, row, name)
		if !present || s == "" {
			return 0
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			good = false
		}
		return v
	}
	c.BytesReceived = num(colBytesRecv)
	c.BytesSent = num(colBytesSent)
	c.ClientID = num(colClientID)
	c.PeerID = num(colPeerID)
	if s, present := field(h, row, colSinceTimeT); present {
		if t, ok := parseTimeT(s); ok {
			c.ConnectedSince = t
		}
	}
	c.Username, _ = field(h, row, colUsername)
	c.Cipher, _ = field(h, row, colCipher)
	return c, good
}

func parseRoute(h map[string]int, row []string) (Route, bool) {
	var r Route
	var ok bool
	if r.VirtualAddress, ok = field(h, row, colVirtual); !ok {
		return Route{}, false
	}
	r.CommonName, _ = field(h, row, colCommonName)
	r.RealAddress, _ = field(h, row, colRealAddress)
	if s, present := field(h, row, colLastRefTimeT); present {
		r.LastRef, _ = parseTimeT(s)
	}
	return r, true
}

// parseAddr reads an address column; OpenVPN leaves it empty when there is none.
func parseAddr(h map[string]int, row []string, name string) netip.Addr {
	s, _ := field(h, row, name)
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a
}

func parseTimeT(s string) (time.Time, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return time.Time{}, false
	}
	return time.Unix(v, 0).UTC(), true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
