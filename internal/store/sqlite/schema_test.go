package sqlite

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite schema.sql from the migrations")

// dumpSchema renders the schema of a database in a stable order.
func dumpSchema(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY type DESC, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	b.WriteString("-- Generated from migrations/ by `go test ./internal/store/sqlite -run TestSchema -update`.\n-- Do not edit: add a migration instead.\n\n")
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		b.WriteString(s + ";\n\n")
	}
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	b.WriteString("PRAGMA user_version = " + itoa(v) + ";\n")
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestSchema checks that the migrations produce exactly the checked-in schema.sql.
func TestSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "schema.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := dumpSchema(t, s.rdb)
	if *update {
		if err := os.WriteFile("schema.sql", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("schema.sql")
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("schema.sql differs from the migrated database (-schema.sql +migrated); run with -update after adding a migration:\n%s", diff)
	}
}

// TestMigrateIdempotent reopens a migrated database: nothing is applied twice, and a
// database from a newer wirefleet is refused.
func TestMigrateIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	for range 2 {
		s, err := Open(context.Background(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	db, err := sql.Open("sqlite", dsn(path, false, false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(context.Background(), path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v, want a refusal", err)
	}
}

// TestDurabilityPragmas pins the durability choice documented in the package comment.
func TestDurabilityPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The writer's own connection is busy in its goroutine: check a second writer-DSN
	// connection and the read pool.
	w, err := sql.Open("sqlite", dsn(path, false, false))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var mode string
	var syncLevel int
	for _, db := range []*sql.DB{w, s.rdb} {
		if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`PRAGMA synchronous`).Scan(&syncLevel); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || syncLevel != 2 {
			t.Errorf("journal_mode=%s synchronous=%d, want wal and 2 (FULL)", mode, syncLevel)
		}
	}
}

// TestEphemeralSkipsFsync: a store thrown away at exit does not fsync its commits.
func TestEphemeralSkipsFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.db")
	s, err := Open(context.Background(), path, Options{Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var syncLevel int
	if err := s.rdb.QueryRow(`PRAGMA synchronous`).Scan(&syncLevel); err != nil {
		t.Fatal(err)
	}
	if syncLevel != 0 {
		t.Errorf("ephemeral store: synchronous = %d, want 0 (OFF)", syncLevel)
	}
}
