// Package enabler is the ASSIST-IoT VPN enabler compatible REST API (specs/vpn-enabler.md),
// bound to one Wirefleet network: /keys, /client (create, delete), /client/enable,
// /client/disable, /info, /info/conf, /version, /health and /api-export with upstream's
// paths, bodies, status codes and messages.
//
// Clients created here are ordinary peers of the network, stored by the control plane's
// service layer (consumed through the small Service interface) and put on the WireGuard
// device by a Gateway. Unlike upstream, nothing here ever runs a command: keys are parsed
// strictly (wirefleet.ParseKey) and travel as bytes to the device layer, /info and
// /info/conf are rendered from the device port in the exact format of `wg show` and
// `wg showconf` (minus every secret), and allocation is the control plane's (random mode).
package enabler
