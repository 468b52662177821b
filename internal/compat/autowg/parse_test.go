package autowg

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
)

func TestSubjectCN(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "CN=1234,O=Org", want: "1234"},
		{in: "SERIALNUMBER=SN0042,CN=device-7", want: "device-7"},
		{in: "O=Org,CN=device-7", want: "device-7"},
		{in: `CN=a\,b,O=Org`, want: "a,b"},
		{in: `CN=a\2cb`, want: "a,b"},
		{in: `CN="quoted, value",O=x`, want: "quoted, value"},
		{in: `cn=lower`, want: "lower"},
		{in: `2.5.4.3=oid`, want: "oid"},
		{in: `CN= spaced `, want: "spaced"},
		{in: `CN=\ lead`, want: " lead"},
		{in: `CN=trail\ `, want: "trail "},
		{in: `O=Org+CN=multi`, want: "multi"},
		{in: `CN=`, want: ""},
		{in: ``, bad: true},
		{in: `O=Org`, bad: true},
		{in: `CN=1,CN=2`, bad: true},
		{in: `CN`, bad: true},
		{in: `CN=a,`, bad: true},
		{in: `CN=a\`, bad: true},
		{in: `CN=a\q`, bad: true},
		{in: `CN="open`, bad: true},
		{in: `CN="x"y`, bad: true},
		{in: `=x`, bad: true},
		{in: `CN=a"b`, bad: true},
		{in: "CN=" + strings.Repeat("a", 5000), bad: true},
	}
	for _, tt := range tests {
		got, err := SubjectCN(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("SubjectCN(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("SubjectCN(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// The subject Caddy sends is Go's pkix.Name.String(): every CN survives the round trip.
func TestSubjectCNRoundTrip(t *testing.T) {
	for _, cn := range []string{"1234", "device-7", "a,b", `we"ird`, " lead", "trail ", "#hash", "x+y;z<>", `back\slash`, "ünï", "a=b"} {
		n := pkix.Name{CommonName: cn, SerialNumber: "SN0042", Organization: []string{"Org, Inc."}, Country: []string{"DE"}}
		s := n.String()
		got, err := SubjectCN(s)
		if err != nil || got != cn {
			t.Errorf("CN %q in %q: got %q, %v", cn, s, got, err)
		}
	}
	// An unknown attribute is printed as an OID with a #hex value: skipped, CN still found.
	n := pkix.Name{CommonName: "dev", ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: "x"}}}
	if got, err := SubjectCN(n.String()); err != nil || got != "dev" {
		t.Errorf("%q: %q %v", n.String(), got, err)
	}
}

func TestParseKeyBody(t *testing.T) {
	k, _ := wirefleet.GeneratePrivateKey()
	pub := k.PublicKey()
	for _, body := range []string{pub.String(), pub.String() + "\n", pub.String() + " \r\n\t"} {
		got, err := ParseKeyBody([]byte(body))
		if err != nil || got != pub {
			t.Errorf("ParseKeyBody(%q) = %v, %v", body, got, err)
		}
	}
	for _, body := range []string{"", "\n", "x", pub.String()[:43], pub.String() + "A", "\n" + pub.String(), strings.Repeat("A", 43) + "=",
		strings.Repeat("A", 42) + "B=", strings.Repeat("A", 44), strings.Repeat("A", 40) + "AA==", strings.Repeat("A", 44) + "=="} {
		if got, err := ParseKeyBody([]byte(body)); err == nil {
			t.Errorf("ParseKeyBody(%q) = %v, want an error", body, got)
		}
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pattern, cn, want string
		ok                bool
	}{
		{DefaultPattern, "1234", "1234", true},
		{DefaultPattern, "abc-def", "abc", true},
		{DefaultPattern, "-abc", "", false},
		{`smart-toilet-(\d+)`, "smart-toilet-12abc", "12", true},
		{`smart-toilet-(\d+)`, "x-smart-toilet-12", "", false},
		{`(.+)`, "device-7", "device-7", true},
		{`(a)|(b)`, "b", "", false}, // group 1 absent
		{`(a*)`, "b", "", false},    // group 1 empty
	}
	for _, tt := range tests {
		p, err := CompilePattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Name(tt.cn)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q on %q = %q %v, want %q %v", tt.pattern, tt.cn, got, ok, tt.want, tt.ok)
		}
	}
	for _, bad := range []string{"(", `\d+`, "(?:x)"} {
		if _, err := CompilePattern(bad); err == nil {
			t.Errorf("CompilePattern(%q) accepted", bad)
		}
	}
}

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/": "/", "/vpn": "/vpn/", "vpn/": "/vpn/", "/a/b/": "/a/b/"} {
		if got := NormalizePrefix(in); got != want {
			t.Errorf("NormalizePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseKeyBody(f *testing.F) {
	k, _ := wirefleet.GeneratePrivateKey()
	for _, s := range []string{k.PublicKey().String(), k.PublicKey().String() + "\n", "", "AAAA", strings.Repeat("A", 43) + "="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := ParseKeyBody(b)
		if err != nil {
			return
		}
		if key.IsZero() {
			t.Fatal("accepted the zero key")
		}
		// One key, one spelling: the accepted text is the canonical form.
		if strings.TrimRight(string(b), " \t\r\n") != key.String() {
			t.Fatalf("accepted %q, canonical %q", b, key.String())
		}
	})
}

func FuzzSubjectCN(f *testing.F) {
	for _, s := range []string{"CN=1234,O=Org", `SERIALNUMBER=SN0042,CN=a\,b`, `CN="q"`, "O=x+CN=y", `CN=\41`, "", "=,+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cn, err := SubjectCN(s)
		if err != nil {
			return
		}
		// A CN that parsed re-renders (as Go does) to a subject giving the same CN.
		if strings.ContainsRune(cn, 0) {
			return
		}
		back := pkix.Name{CommonName: cn}.String()
		if cn != "" {
			if got, err := SubjectCN(back); err != nil || got != cn {
				t.Fatalf("%q → CN %q → %q → %q, %v", s, cn, back, got, err)
			}
		}
	})
}
