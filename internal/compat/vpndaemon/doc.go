// Package vpndaemon serves the HTTP API of eduVPN's vpn-daemon (v3), so that an unmodified
// eduVPN portal can drive a Wirefleet gateway as it drives vpn-daemon today.
//
// The contract is specs/vpn-daemon.md. The portal is an unforgiving client: it decodes every
// 2xx body as JSON, never follows redirects, gives up after 4 s, and uses /i/node's
// node_uptime to decide whether idle peers may be pruned. Hence the rules this package keeps:
// every GET answers a JSON object whose arrays are never null; bad input is a 400 with one
// plain-text line and leaves the device untouched; all OpenVPN work in a request shares one
// deadline of at most 2 s; node_uptime never exceeds the age of the device's peer state.
//
// The handler consumes two ports: wgdev.Device for WireGuard and OpenVPN (defined here) for
// the OpenVPN management sockets. A nil OpenVPN behaves as "no OpenVPN process running".
package vpndaemon
