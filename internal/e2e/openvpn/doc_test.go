// Package openvpn tests the OpenVPN management bridge against real OpenVPN 2.6 server and
// client processes in network namespaces: the Fleet directly, and /o/ of the vpn-daemon
// API of a real `wirefleet gateway` process. The tests are privileged (root, TUN, the
// openvpn binary) and skip under -short.
package openvpn
