package openvpn

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		in   string
		want Line
	}{
		{">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n", Line{Kind: LineNotification, Type: "INFO", Text: "OpenVPN Management Interface Version 5 -- type 'help' for more info"}},
		{">BYTECOUNT_CLI:0,2416,2382", Line{Kind: LineNotification, Type: "BYTECOUNT_CLI", Text: "0,2416,2382"}},
		{">CLIENT:ENV,END", Line{Kind: LineNotification, Type: "CLIENT", Text: "ENV,END"}},
		{">LOG:1795453727,,a/b SIGTERM[soft,] received", Line{Kind: LineNotification, Type: "LOG", Text: "1795453727,,a/b SIGTERM[soft,] received"}},
		{">", Line{Kind: LineNotification}},
		{"SUCCESS: pid=5441", Line{Kind: LineSuccess, Text: "pid=5441"}},
		{"SUCCESS:", Line{Kind: LineSuccess}},
		{"ERROR: common name 'x' not found", Line{Kind: LineError, Text: "common name 'x' not found"}},
		{"END\r", Line{Kind: LineEnd}},
		{"END ", Line{Kind: LineData, Text: "END "}},
		{"ENDED", Line{Kind: LineData, Text: "ENDED"}},
		{"CLIENT_LIST\tUNDEF\t", Line{Kind: LineData, Text: "CLIENT_LIST\tUNDEF\t"}},
		{"", Line{Kind: LineData}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ParseLine(tt.in)); diff != "" {
			t.Errorf("ParseLine(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{">INFO:x", "SUCCESS: a", "ERROR: b", "END", "TITLE\tx", ">", ">CLIENT:ENV,END\r\n", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := ParseLine(s)
		trimmed := strings.TrimRight(s, "\r\n")
		if (l.Kind == LineNotification) != strings.HasPrefix(trimmed, ">") {
			t.Errorf("%q: kind %v, notifications are exactly the lines starting with '>'", s, l.Kind)
		}
		if (l.Kind == LineEnd) != (trimmed == "END") {
			t.Errorf("%q: kind %v", s, l.Kind)
		}
		if l.Kind == LineData && l.Text != trimmed {
			t.Errorf("%q: data text %q", s, l.Text)
		}
	})
}

func TestKillCommandQuoting(t *testing.T) {
	tests := []struct{ cn, want string }{
		{"kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=", `kill "kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s="`},
		{`a"b\c`, `kill "a\"b\\c"`},
		{"#x;y", `kill "#x;y"`},
	}
	for _, tt := range tests {
		if got := killCommand(tt.cn); got != tt.want {
			t.Errorf("killCommand(%q) = %s, want %s", tt.cn, got, tt.want)
		}
		if got := unquoteArg(strings.TrimPrefix(killCommand(tt.cn), "kill ")); got != tt.cn {
			t.Errorf("round trip of %q = %q", tt.cn, got)
		}
	}
}

func TestValidCommonName(t *testing.T) {
	for _, ok := range []string{"kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=", "a", "ü-name", strings.Repeat("a", 127)} {
		if err := ValidCommonName(ok); err != nil {
			t.Errorf("ValidCommonName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a\nkill x", "a\tb", "a\x00", "198.51.100.2:1194", strings.Repeat("a", 128), "\xff"} {
		if err := ValidCommonName(bad); err == nil {
			t.Errorf("ValidCommonName(%q) = nil, want an error", bad)
		}
	}
}
