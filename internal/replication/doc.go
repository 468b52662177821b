// Package replication is the control plane's snapshot + log protocol, both ends.
//
// Source side (Handler): GET /api/v1/replication/snapshot returns the state with the log
// head it corresponds to; GET /api/v1/replication/log?after=SEQ&hash=H streams the ops after
// SEQ as NDJSON, one op per line, with heartbeat lines while the log is idle. Before the
// stream starts the source checks the consumer's position and answers
//
//   - 409 reason "horizon"  — SEQ is beyond the source's head (the source was restored from
//     an older backup, or the consumer followed another primary);
//   - 409 reason "diverged" — the op at SEQ has another hash (a replaced history);
//   - 410 reason "compacted" — the log no longer reaches back to SEQ.
//
// In all three cases the consumer reloads a snapshot by itself.
//
// What a caller sees depends on its roles (View): admins and followers without a network
// scope get everything a replica needs (network private keys, peer preshared keys, token
// hashes — never token secrets, which the server does not have). A gateway gets only the
// networks of its scope, with their private keys and PSKs, and no tokens at all. Ops a
// caller may not see are sent "elided": seq, prev_hash, hash and time only, so the consumer
// still follows the chain's links and its position, without learning the op's type, key or
// value.
//
// Consumer side (Follower): snapshot + tail, chain verification, automatic reload on
// horizon/diverged/compacted, reconnects with capped exponential backoff forever, and stops
// when its context ends. What the ops do is the Applier's business (internal/reconcile on a
// gateway).
package replication
