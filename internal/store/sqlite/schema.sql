-- Generated from migrations/ by `go test ./internal/store/sqlite -run TestSchema -update`.
-- Do not edit: add a migration instead.

CREATE TABLE log_base (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
) STRICT;

CREATE TABLE networks (
	name        TEXT PRIMARY KEY,
	listen_port INTEGER NOT NULL,
	ipv4        TEXT NOT NULL DEFAULT '',  -- host address/prefix, '' = none
	ipv6        TEXT NOT NULL DEFAULT '',
	endpoint    TEXT NOT NULL DEFAULT '',
	routes      TEXT NOT NULL DEFAULT '',  -- comma-separated prefixes
	dns         TEXT NOT NULL DEFAULT '',  -- comma-separated addresses
	mtu         INTEGER NOT NULL,
	keepalive   INTEGER NOT NULL,
	allocation  TEXT NOT NULL,
	public_key  TEXT NOT NULL,
	private_key TEXT NOT NULL,             -- sensitive: never leaves through the API
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE ops (
	seq       INTEGER PRIMARY KEY,
	prev_hash BLOB NOT NULL,
	hash      BLOB NOT NULL,
	time      INTEGER NOT NULL,
	type      TEXT NOT NULL,
	key       TEXT NOT NULL,
	value     BLOB NOT NULL                -- JSON
, value_digest BLOB) STRICT;

CREATE TABLE peer_addresses (
	network    TEXT NOT NULL,
	address    TEXT NOT NULL,
	public_key TEXT NOT NULL,
	PRIMARY KEY (network, address)
) STRICT, WITHOUT ROWID;

CREATE TABLE peers (
	network       TEXT NOT NULL,
	public_key    TEXT NOT NULL,
	name          TEXT NOT NULL DEFAULT '',
	addresses     TEXT NOT NULL,           -- comma-separated; mirrored in peer_addresses
	preshared_key TEXT,                    -- sensitive; NULL = none
	enabled       INTEGER NOT NULL,
	expires_at    INTEGER,                 -- NULL = never
	expired       INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	PRIMARY KEY (network, public_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL DEFAULT '',
	hash         BLOB NOT NULL,            -- SHA-256 of the secret; the secret is never stored
	roles        TEXT NOT NULL,            -- comma-separated
	networks     TEXT NOT NULL DEFAULT '', -- comma-separated scope, '' = all
	expires_at   INTEGER,
	last_used_at INTEGER,
	created_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX peers_expiry ON peers (expires_at) WHERE expires_at IS NOT NULL AND expired = 0;

PRAGMA user_version = 2;
