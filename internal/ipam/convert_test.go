package ipam

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
)

var testPool = netip.MustParsePrefix("fde3:25fb:7f6c:1::/64")

func TestConvertDirectBCD(t *testing.T) {
	c, err := NewConverter(ConvDirectBCD, testPool, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, canon, addr string
		bad               bool
	}{
		{name: "1234", canon: "1234", addr: "fde3:25fb:7f6c:1::1234"},
		{name: "1", canon: "1", addr: "fde3:25fb:7f6c:1::1"},
		{name: "9999", canon: "9999", addr: "fde3:25fb:7f6c:1::9999"},
		{name: "0012", canon: "12", addr: "fde3:25fb:7f6c:1::12"},
		{name: "000000000012", canon: "12", addr: "fde3:25fb:7f6c:1::12"},
		{name: "23", canon: "23", addr: "fde3:25fb:7f6c:1::23"},
		{name: "0", bad: true},
		{name: "0000", bad: true},
		{name: "10000", bad: true},
		{name: "", bad: true},
		{name: "12a", bad: true},
		{name: "-1", bad: true},
		{name: "١٢", bad: true}, // Arabic-Indic digits are not ASCII
	}
	for _, tt := range tests {
		canon, addr, err := c.Convert(tt.name)
		if tt.bad {
			if !wirefleet.IsKind(err, wirefleet.KindInvalid) {
				t.Errorf("Convert(%q) = %s, %v; want an invalid-name error", tt.name, addr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Convert(%q): %v", tt.name, err)
			continue
		}
		got := [2]string{canon, addr.String()}
		if d := cmp.Diff([2]string{tt.canon, tt.addr}, got); d != "" {
			t.Errorf("Convert(%q) (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestConvertDirectBCDPoolSize(t *testing.T) {
	if _, err := NewConverter(ConvDirectBCD, netip.MustParsePrefix("fd00::/113"), ""); err == nil {
		t.Error("a /113 pool was accepted for direct-bcd")
	}
	c, err := NewConverter(ConvDirectBCD, netip.MustParsePrefix("fd00::ab:0/112"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, a, _ := c.Convert("42"); a != netip.MustParseAddr("fd00::ab:42") {
		t.Errorf("/112 pool: got %s", a)
	}
}

func TestConvertMetans(t *testing.T) {
	tests := []struct {
		template, name, canon, addr string
		bad                         bool
	}{
		// The spec's test vector (CN smart-toilet-1234, pattern smart-toilet-(\d+)).
		{template: "st%s.0", name: "1234", canon: "1234", addr: "fde3:25fb:7f6c:1:cb0b:5960:3f8c:99ad"},
		{template: "", name: "Device-7", canon: "device-7"},
		{template: "%s", name: "device-7", canon: "device-7"},
		{template: "st%s.0", name: "ABC", canon: "abc"},
		{template: "%s", name: strings.Repeat("a", 63), canon: strings.Repeat("a", 63)},
		{template: "%s", name: strings.Repeat("a", 64), bad: true},
		{template: "x%s", name: strings.Repeat("a", 63), bad: true}, // 64 with the template
		{template: "%s", name: "a_b", bad: true},
		{template: "%s", name: "-ab", bad: true},
		{template: "%s", name: "ab-", bad: true},
		{template: "%s", name: "a..b", bad: true},
		{template: "%s", name: "", bad: true},
		{template: "%s", name: "é", bad: true},
		{template: "%s.", name: "a", bad: true}, // empty trailing label
	}
	for _, tt := range tests {
		c, err := NewConverter(ConvMetans, testPool, tt.template)
		if err != nil {
			t.Fatalf("template %q: %v", tt.template, err)
		}
		canon, addr, err := c.Convert(tt.name)
		if tt.bad {
			if !wirefleet.IsKind(err, wirefleet.KindInvalid) {
				t.Errorf("template %q Convert(%q) = %s, %v; want invalid", tt.template, tt.name, addr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("template %q Convert(%q): %v", tt.template, tt.name, err)
			continue
		}
		if canon != tt.canon {
			t.Errorf("canonical %q, want %q", canon, tt.canon)
		}
		if !testPool.Contains(addr) {
			t.Errorf("Convert(%q) = %s: outside the pool", tt.name, addr)
		}
		if tt.addr != "" && addr.String() != tt.addr {
			t.Errorf("template %q Convert(%q) = %s, want %s", tt.template, tt.name, addr, tt.addr)
		}
	}
	// Upper and lower case are one device; different names are different addresses.
	c, _ := NewConverter(ConvMetans, testPool, "")
	_, a1, _ := c.Convert("Device-7")
	_, a2, _ := c.Convert("device-7")
	_, a3, _ := c.Convert("device-8")
	if a1 != a2 || a1 == a3 {
		t.Errorf("Device-7=%s device-7=%s device-8=%s", a1, a2, a3)
	}
}

func TestConvertMetansPoolBits(t *testing.T) {
	// A /96 pool keeps 96 network bits and the digest's last 32.
	p := netip.MustParsePrefix("fd00:1:2:3:4:5::/96")
	c, err := NewConverter(ConvMetans, p, "st%s.0")
	if err != nil {
		t.Fatal(err)
	}
	_, a, _ := c.Convert("1234")
	if a.String() != "fd00:1:2:3:4:5:3f8c:99ad" {
		t.Errorf("got %s", a)
	}
	// A /68 pool: the nibble boundary inside a byte.
	p = netip.MustParsePrefix("fde3:25fb:7f6c:1:f000::/68")
	c, _ = NewConverter(ConvMetans, p, "st%s.0")
	_, a, _ = c.Convert("1234")
	if a.String() != "fde3:25fb:7f6c:1:fb0b:5960:3f8c:99ad" {
		t.Errorf("/68: got %s", a)
	}
}

func TestMetansTemplate(t *testing.T) {
	tests := []struct {
		in   string
		want [2]string
		bad  bool
	}{
		{in: "", want: [2]string{"", ""}},
		{in: "%s", want: [2]string{"", ""}},
		{in: "st%s.0", want: [2]string{"st", ".0"}},
		{in: "a%%b%s", want: [2]string{"a%b", ""}},
		{in: "%s%%", want: [2]string{"", "%"}},
		{in: "st", bad: true},
		{in: "%s%s", bad: true},
		{in: "%d", bad: true},
		{in: "%s%", bad: true},
	}
	for _, tt := range tests {
		got, err := parseTemplate(tt.in)
		if tt.bad != (err != nil) {
			t.Errorf("parseTemplate(%q) err = %v, want bad=%v", tt.in, err, tt.bad)
			continue
		}
		if !tt.bad && got != tt.want {
			t.Errorf("parseTemplate(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if _, err := NewConverter(ConvDirectBCD, testPool, "st%s"); err == nil {
		t.Error("a template was accepted for direct-bcd")
	}
}

func TestValidatePool(t *testing.T) {
	for _, s := range []string{"198.51.100.0/24", "fd00::1/64", "fd00::/128", "fd00::/127", "fd00::/48", "::ffff:198.51.100.0/120"} {
		if err := ValidatePool(netip.MustParsePrefix(s)); !wirefleet.IsKind(err, wirefleet.KindInvalid) {
			t.Errorf("ValidatePool(%s) = %v, want invalid", s, err)
		}
	}
	for _, s := range []string{"fd00::/64", "fd00::/112", "fd00::/126", "2001:db8:1::/64"} {
		if err := ValidatePool(netip.MustParsePrefix(s)); err != nil {
			t.Errorf("ValidatePool(%s): %v", s, err)
		}
	}
	if err := ValidatePool(netip.Prefix{}); err == nil {
		t.Error("the zero pool was accepted")
	}
	if _, err := NewConverter("nope", testPool, ""); err == nil {
		t.Error("an unknown converter was accepted")
	}
}

func TestConvertSequentialAndFirstFree(t *testing.T) {
	c, err := NewConverter(ConvSequential, testPool, "")
	if err != nil {
		t.Fatal(err)
	}
	canon, addr, err := c.Convert("Dev-1")
	if err != nil || canon != "dev-1" || addr.IsValid() {
		t.Fatalf("Convert = %q %s %v", canon, addr, err)
	}
	// The network's own address is the pool's last one (as autowg mode sets it up).
	n := wirefleet.Network{Name: "reg", IPv6: netip.MustParsePrefix("fd00:1::ffff/112"), Allocation: wirefleet.AllocSequential}
	p := New(n, nil)
	sub := netip.MustParsePrefix("fd00:1::/126") // ::1 .. ::3 usable
	var got []string
	for range 3 {
		a, err := p.FirstFreeIn(sub)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Reserve([]netip.Addr{a}); err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if d := cmp.Diff([]string{"fd00:1::1", "fd00:1::2", "fd00:1::3"}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if _, err := p.FirstFreeIn(sub); !wirefleet.IsKind(err, wirefleet.KindConflict) {
		t.Errorf("full pool: %v, want conflict", err)
	}
	p.Release([]netip.Addr{netip.MustParseAddr("fd00:1::2")})
	if a, _ := p.FirstFreeIn(sub); a.String() != "fd00:1::2" {
		t.Errorf("after release: %s", a)
	}
	if _, err := p.FirstFreeIn(netip.MustParsePrefix("fd00:2::/126")); !wirefleet.IsKind(err, wirefleet.KindInvalid) {
		t.Errorf("outside: %v", err)
	}
	// The own address at the end of a sub-pool is skipped.
	own := New(wirefleet.Network{Name: "reg", IPv6: netip.MustParsePrefix("fd00:1::1/112")}, nil)
	if a, _ := own.FirstFreeIn(sub); a.String() != "fd00:1::2" {
		t.Errorf("own address handed out: %s", a)
	}
}

func FuzzConvert(f *testing.F) {
	for _, s := range []string{"1234", "0", "0012", "smart-toilet", "a.b", strings.Repeat("9", 70), "Ab-1"} {
		f.Add(s)
	}
	bcd, _ := NewConverter(ConvDirectBCD, testPool, "")
	mt, _ := NewConverter(ConvMetans, testPool, "st%s.0")
	f.Fuzz(func(t *testing.T, name string) {
		for _, c := range []Converter{bcd, mt} {
			canon, a, err := c.Convert(name)
			if err != nil {
				if !wirefleet.IsKind(err, wirefleet.KindInvalid) {
					t.Fatalf("%v: error of the wrong kind: %v", c, err)
				}
				continue
			}
			if !testPool.Contains(a) || a == testPool.Addr() {
				t.Fatalf("%v: %q → %s, outside the pool or its network address", c, name, a)
			}
			// Canonical names are fixed points.
			if c2, a2, err := c.Convert(canon); err != nil || c2 != canon || a2 != a {
				t.Fatalf("%v: canonical %q is not stable: %q %s %v", c, canon, c2, a2, err)
			}
		}
	})
}
