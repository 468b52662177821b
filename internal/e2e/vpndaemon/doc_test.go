// Package vpndaemon holds the privileged end-to-end tests of `wirefleet gateway` as an
// eduVPN vpn-daemon replacement: the real binary with the userspace backend in one network
// namespace, a peer built with Debian's stock wireguard-go, wg and ip in another, and the
// API driven as the portal drives it (form encoding, mTLS).
package vpndaemon
