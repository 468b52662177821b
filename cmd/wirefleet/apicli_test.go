package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args     []string
		wantPos  []string
		wantName string
		wantQR   bool
	}{
		{[]string{"office", "--name", "laptop"}, []string{"office"}, "laptop", false},
		{[]string{"-name", "laptop", "office", "-qr"}, []string{"office"}, "laptop", true},
		{[]string{"a", "-qr", "b", "--", "-c"}, []string{"a", "b", "-c"}, "", true},
		{nil, nil, "", false},
	}
	for _, tt := range tests {
		fs := newFlagSet("t", "", io.Discard)
		name := fs.String("name", "", "")
		qr := fs.Bool("qr", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if diff := cmp.Diff(tt.wantPos, pos); diff != "" || *name != tt.wantName || *qr != tt.wantQR {
			t.Errorf("%v: pos %v name %q qr %v; want %v %q %v", tt.args, pos, *name, *qr, tt.wantPos, tt.wantName, tt.wantQR)
		}
	}
	fs := newFlagSet("t", "", io.Discard)
	if _, err := parseInterspersed(fs, []string{"a", "-nosuch"}); !errors.Is(err, errFlagParse) {
		t.Errorf("unknown flag: %v", err)
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, err := parseExpiry("", now); got != nil || err != nil {
		t.Errorf("empty: %v %v", got, err)
	}
	if got, err := parseExpiry("48h", now); err != nil || !got.Equal(now.Add(48*time.Hour)) {
		t.Errorf("48h: %v %v", got, err)
	}
	if got, err := parseExpiry("2026-12-31T23:59:00Z", now); err != nil || got.Year() != 2026 || got.Month() != 12 {
		t.Errorf("RFC 3339: %v %v", got, err)
	}
	for _, bad := range []string{"-1h", "tomorrow", "2026-12-31"} {
		if _, err := parseExpiry(bad, now); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
}

// TestTokenNotInHelp: the token from the environment must never be printed as a flag default.
func TestTokenNotInHelp(t *testing.T) {
	t.Setenv("WIREFLEET_TOKEN", "wft_abcd_supersecret")
	var out strings.Builder
	fs := newFlagSet("t", "", &out)
	addAPIFlags(fs)
	fs.Usage()
	if strings.Contains(out.String(), "supersecret") {
		t.Errorf("help shows the token:\n%s", out.String())
	}
}
