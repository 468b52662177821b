package wgquick

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Render returns the config in wg-quick syntax with keys in a fixed order, so the same
// Config always renders to the same bytes. Parse(Render(c)) yields c again (apart from the
// Line fields).
func (c *Config) Render() []byte {
	var b bytes.Buffer
	_, _ = c.WriteTo(&b)
	return b.Bytes()
}

// WriteTo writes the rendered config to w.
func (c *Config) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	in := c.Interface
	b.WriteString("[Interface]\n")
	if !in.PrivateKey.IsZero() {
		kv(&b, "PrivateKey", in.PrivateKey.String())
	}
	if len(in.Addresses) > 0 {
		kv(&b, "Address", joinPrefixes(in.Addresses))
	}
	if in.ListenPort != 0 {
		kv(&b, "ListenPort", strconv.Itoa(in.ListenPort))
	}
	if len(in.DNS) > 0 {
		kv(&b, "DNS", strings.Join(in.DNS, ", "))
	}
	if in.MTU != 0 {
		kv(&b, "MTU", strconv.Itoa(in.MTU))
	}
	for _, e := range in.Extra {
		kv(&b, e.Key, e.Value)
	}
	for _, p := range c.Peers {
		b.WriteString("\n[Peer]\n")
		if p.Name != "" {
			fmt.Fprintf(&b, "# Name = %s\n", oneLine(p.Name))
		}
		kv(&b, "PublicKey", p.PublicKey.String())
		if !p.PresharedKey.IsZero() {
			kv(&b, "PresharedKey", p.PresharedKey.String())
		}
		if p.Endpoint != "" {
			kv(&b, "Endpoint", p.Endpoint)
		}
		if len(p.AllowedIPs) > 0 {
			kv(&b, "AllowedIPs", joinPrefixes(p.AllowedIPs))
		}
		if p.PersistentKeepalive != 0 {
			kv(&b, "PersistentKeepalive", strconv.Itoa(p.PersistentKeepalive))
		}
		for _, e := range p.Extra {
			kv(&b, e.Key, e.Value)
		}
	}
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

func kv(b *bytes.Buffer, k, v string) {
	b.WriteString(k)
	b.WriteString(" = ")
	b.WriteString(v)
	b.WriteByte('\n')
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// oneLine keeps a user-supplied name from breaking out of its comment line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
