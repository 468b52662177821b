package uapi

import (
	"encoding/hex"
	"net/netip"
	"strconv"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Change is one peer to upsert, with the prefixes it holds now that it must lose. Stale
// prefixes are removed after the new ones are added, so the peer is never left without.
type Change struct {
	wgdev.Peer
	Stale []netip.Prefix
}

// Interface is the device part of a set operation; nil fields are left unchanged.
type Interface struct {
	PrivateKey *wirefleet.Key
	ListenPort *int
}

// AppendSet appends the body of one set operation (without "set=1" and without the final
// blank line) to b: the interface settings, then each change, then each removal.
//
// An upsert always states the preshared key (zero removes it) and the keepalive, so the
// result matches the desired peer whatever it was before. An endpoint is only written when
// set: UAPI cannot clear one, and a peer that roamed keeps the address it roamed to.
func AppendSet(b []byte, ifc Interface, changes []Change, remove []wirefleet.Key) []byte {
	if ifc.PrivateKey != nil {
		b = appendKey(b, "private_key", ifc.PrivateKey)
	}
	if ifc.ListenPort != nil {
		b = append(b, "listen_port="...)
		b = strconv.AppendInt(b, int64(*ifc.ListenPort), 10)
		b = append(b, '\n')
	}
	for i := range changes {
		c := &changes[i]
		b = appendKey(b, "public_key", &c.PublicKey)
		var psk wirefleet.Key
		if c.PresharedKey != nil {
			psk = *c.PresharedKey
		}
		b = appendKey(b, "preshared_key", &psk)
		if c.Endpoint.IsValid() {
			b = append(b, "endpoint="...)
			b = c.Endpoint.AppendTo(b)
			b = append(b, '\n')
		}
		b = append(b, "persistent_keepalive_interval="...)
		b = strconv.AppendInt(b, int64(wgdev.KeepaliveSeconds(c.PersistentKeepalive)), 10)
		b = append(b, '\n')
		for _, a := range c.AllowedIPs {
			b = append(b, "allowed_ip="...)
			b = a.Masked().AppendTo(b)
			b = append(b, '\n')
		}
		for _, a := range c.Stale {
			b = append(b, "allowed_ip=-"...)
			b = a.Masked().AppendTo(b)
			b = append(b, '\n')
		}
	}
	for i := range remove {
		b = appendKey(b, "public_key", &remove[i])
		b = append(b, "remove=true\n"...)
	}
	return b
}

func appendKey(b []byte, name string, k *wirefleet.Key) []byte {
	b = append(b, name...)
	b = append(b, '=')
	b = hex.AppendEncode(b, k[:])
	return append(b, '\n')
}
