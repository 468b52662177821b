-- Replication and compaction (version 2).
--
-- log_base is where the stored log starts: the seq and hash of the op just before the first
-- op in `ops`. It is (0, zero hash) for a full log, moves forward when old ops are compacted,
-- and is the snapshot's (seq, hash) on a replica loaded from a snapshot. When `ops` is empty
-- it is also the head.
CREATE TABLE log_base (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
) STRICT;

INSERT INTO log_base (id, seq, hash) VALUES (1, 0, zeroblob(32));

-- Set on ops received redacted from a primary: the SHA-256 of the original value, which the
-- hash chain covers (internal/oplog).
ALTER TABLE ops ADD COLUMN value_digest BLOB;
