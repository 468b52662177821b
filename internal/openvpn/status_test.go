package openvpn

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/<name>, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), got, *update)
}

func splitCRLF(b []byte) []string {
	return strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), "\n")
}

// TestParseStatusGolden parses recorded and hand-made "status 3" answers and compares
// the result with golden JSON.
func TestParseStatusGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/status/*.status3")
	if err != nil || len(files) == 0 {
		t.Fatalf("no status files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			st, err := ParseStatus(splitCRLF(raw), '\t')
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "status/"+strings.TrimSuffix(filepath.Base(f), ".status3")+".golden.json", append(out, '\n'))
		})
	}
}

func TestParseStatusRealRecording(t *testing.T) {
	raw, err := os.ReadFile("testdata/status/openvpn-2.6.14.status3")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatus(splitCRLF(raw), '\t')
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Clients) != 1 {
		t.Fatalf("clients = %d, want 1", len(st.Clients))
	}
	c := st.Clients[0]
	got := []string{c.CommonName, c.VirtualIPv4.String(), c.VirtualIPv6.String(), c.RealAddress, c.Cipher}
	want := []string{"kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=", "198.51.100.2", "2001:db8:1::1000", "192.0.2.2:52379", "AES-256-GCM"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("client (-want +got):\n%s", diff)
	}
	if c.BytesReceived != 2376 || c.BytesSent != 2382 || c.ConnectedSince.Unix() != 1795453665 {
		t.Errorf("counters/time = %d %d %v", c.BytesReceived, c.BytesSent, c.ConnectedSince)
	}
}

func TestParseStatusRejectsOtherFormats(t *testing.T) {
	// "status 1" answers with a plain title line: not something to guess from.
	if _, err := ParseStatus([]string{"OpenVPN CLIENT LIST", "Updated,2026-11-23 17:07:54"}, '\t'); err == nil {
		t.Error("status 1 output accepted as status 3")
	}
	st, err := ParseStatus([]string{"TITLE,OpenVPN 2.6", "CLIENT_LIST,a,192.0.2.1:1,198.51.100.2,,1,2,x,1795453665,UNDEF,0,0,AES-256-GCM", "END"}, ',')
	if err != nil || len(st.Clients) != 1 || st.Clients[0].VirtualIPv4.String() != "198.51.100.2" {
		t.Errorf("status 2 with ',' = %+v, %v", st, err)
	}
}

func FuzzParseStatus(f *testing.F) {
	files, _ := filepath.Glob("testdata/status/*.status3")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw))
	}
	f.Add("HEADER\tCLIENT_LIST\n CLIENT_LIST\t\t\t\n")
	f.Add("TITLE\nHEADER\tCLIENT_LIST\tCommon Name\tCommon Name\nCLIENT_LIST\ta\tb\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(strings.Split(s, "\n"), '\t')
		if err != nil {
			return
		}
		for _, c := range st.Clients {
			if c.VirtualIPv4.IsValid() && !c.VirtualIPv4.Is4() {
				t.Errorf("IPv4 field holds %v", c.VirtualIPv4)
			}
			if c.VirtualIPv6.IsValid() && (!c.VirtualIPv6.Is6() || c.VirtualIPv6.Is4In6()) {
				t.Errorf("IPv6 field holds %v", c.VirtualIPv6)
			}
			if strings.ContainsAny(c.CommonName, "\t\n") {
				t.Errorf("common name %q holds a separator", c.CommonName)
			}
		}
	})
}
