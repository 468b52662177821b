// Package openvpn speaks the OpenVPN management interface (unix socket or TCP) to the
// OpenVPN server processes of a node, and treats all of them as one Fleet.
//
// The protocol is line based (CRLF). A command is answered by one "SUCCESS: …" or
// "ERROR: …" line, or, for status/version and a few others, by data lines closed by "END".
// Lines starting with ">" are real-time notifications (">INFO:" banner, ">LOG:",
// ">BYTECOUNT_CLI:", ">CLIENT:"…) that OpenVPN interleaves anywhere, even between the lines
// of a response; Conn hands them to a callback and never mistakes them for an answer.
//
// OpenVPN serves one management client at a time: a second connection waits in the listen
// backlog until the first one closes. Every call therefore carries a deadline (its ctx),
// and the Fleet opens one short connection per process and request, so a hung or busy
// process costs at most the deadline and never blocks the others.
package openvpn
