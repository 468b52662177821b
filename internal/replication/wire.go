package replication

import (
	"encoding/json"
	"time"

	"github.com/wirefleet/wirefleet"
)

// The replication routes (mounted by the server composition behind the API's auth).
const (
	SnapshotPath = "/api/v1/replication/snapshot"
	LogPath      = "/api/v1/replication/log"
)

// Pseudo op types used only on the wire of the log stream.
const (
	// TypeHeartbeat is a line sent while the log is idle; Head is the source's head seq.
	TypeHeartbeat wirefleet.OpType = "heartbeat"
	// TypeElided is an op the caller may not see: only seq, prev_hash, hash and time.
	TypeElided wirefleet.OpType = "elided"
)

// Reasons of the 409/410 answers (the problem's "reason" member and the last segment of
// its "type").
const (
	ReasonHorizon   = "horizon"
	ReasonDiverged  = "diverged"
	ReasonCompacted = "compacted"
)

// ContentTypeNDJSON is the media type of the log stream.
const ContentTypeNDJSON = "application/x-ndjson"

// Line is one line of the log stream: an op (possibly elided) or a heartbeat.
type Line struct {
	wirefleet.Op
	// Head is set on heartbeats: the source's last seq, so a consumer knows its lag.
	Head uint64 `json:"head,omitempty"`
}

// heartbeat builds a heartbeat line.
func heartbeat(head uint64, now time.Time) Line {
	return Line{Op: wirefleet.Op{Type: TypeHeartbeat, Time: now.UTC()}, Head: head}
}

// elide hides everything of op but its place in the chain.
func elide(op wirefleet.Op) wirefleet.Op {
	return wirefleet.Op{Seq: op.Seq, PrevHash: op.PrevHash, Hash: op.Hash, Time: op.Time, Type: TypeElided}
}

// Problem is the problem+json body of replication errors; Reason is set on 409/410.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Kind   string `json:"kind"`
	Reason string `json:"reason,omitempty"`
	// Seq and Hash are the source's head, to help an operator read the log.
	Seq  uint64          `json:"seq"`
	Hash *wirefleet.Hash `json:"hash,omitempty"`
}

func decodeProblem(b []byte) Problem {
	var p Problem
	_ = json.Unmarshal(b, &p)
	return p
}
