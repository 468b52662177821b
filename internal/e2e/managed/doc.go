// Package managed holds the privileged end-to-end tests of managed gateways: a control
// plane, two `wirefleet gateway -control …` processes and a client host, each in its own
// network namespace, with real userspace WireGuard devices, the stock wireguard-go and wg
// on the client, and real SQLite files (backups restored by copying them).
package managed
