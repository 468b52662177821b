package vpndaemon

import (
	"net/http"
	"net/netip"
	"net/url"

	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
	"strings"
	"testing"
	"unicode"
)

// Fuzz targets for every parser of request input. Each checks the parser's promise: it
// never panics, a rejection is a one-line message, and what it accepts is what it claims.

func FuzzParsePublicKey(f *testing.F) {
	for _, s := range []string{keyA, keyB, "", "AAAA", "AAAAAAAAAAAAAAAAAAAAAA==", " " + keyA, strings.Repeat("A", 44), keyA[:43] + "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parsePublicKey(s)
		if err != nil {
			oneLine(t, err)
			return
		}
		if k.String() != s {
			t.Fatalf("accepted %q, which is not the canonical form %q", s, k.String())
		}
	})
}

func FuzzParseIPNet(f *testing.F) {
	for _, s := range []string{"198.51.100.9/32", "fdd1:6916:e5a0:6999::9/128", "198.51.100.5/24", "0.0.0.0/0", "::/0", "::ffff:1.2.3.4/128", "fe80::1%eth0/128", "1.2.3.4", "/", "1.2.3.4/033", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseIPNet(s)
		if err != nil {
			oneLine(t, err)
			return
		}
		if !p.IsValid() || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			t.Fatalf("accepted %q as %v: not a clean network prefix", s, p)
		}
		if q, err := netip.ParsePrefix(p.String()); err != nil || q != p {
			t.Fatalf("%q → %v does not round-trip: %v %v", s, p, q, err)
		}
	})
}

func FuzzParseCommonName(f *testing.F) {
	for _, s := range []string{"DDoG0rDvZ1YufRdDHk37MdgOX+lBgKoBzgOQKJ5dzy4=", "", "a b", "a\nkill b", "\xff", "UNDEF", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cn, err := parseCommonName(s)
		if err != nil {
			oneLine(t, err)
			return
		}
		if cn == "" || strings.IndexFunc(cn, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			t.Fatalf("accepted %q: empty or with whitespace/control characters", cn)
		}
	})
}

// FuzzAddPeerForm feeds whole request bodies through the add_peer parser: a body is either
// rejected with one line, or yields a valid peer with at least one prefix.
func FuzzAddPeerForm(f *testing.F) {
	for _, s := range []string{
		portalForm(keyA, "198.51.100.9/32", "fd00::9/128"),
		"public_key=" + keyA + "&ip_net=198.51.100.9/32",
		"ip_net=1.2.3.4/32",
		"public_key=%zz",
		"a=1;b=2",
		"public_key=" + url.QueryEscape(keyA) + "&ip_net=198.51.100.5%2F24",
	} {
		f.Add(s)
	}
	h := New(Config{Device: &device{Memory: wgdevtest.NewMemory("wg0")}})
	f.Fuzz(func(t *testing.T, body string) {
		req := newPost(t, "/w/add_peer", body, "")
		peer, err := h.parseAddPeer(req.Context(), req)
		if err != nil {
			oneLine(t, err)
			return
		}
		if peer.PublicKey.IsZero() {
			t.Fatalf("accepted %q with a zero key", body)
		}
		if len(peer.AllowedIPs) == 0 {
			t.Fatalf("accepted %q without allowed IPs", body)
		}
	})
}

func FuzzQueryYesNo(f *testing.F) {
	for _, s := range []string{"show_all=yes", "show_all=no", "show_all=", "show_all=yes&show_all=yes", "", "show_all=%zz", "x=1"} {
		f.Add(s)
	}
	h := New(Config{Device: &device{Memory: wgdevtest.NewMemory("wg0")}})
	f.Fuzz(func(t *testing.T, query string) {
		req, err := http.NewRequest(http.MethodGet, "http://x/w/peer_list", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.RawQuery = query
		_, perr := parseYesNo(req.URL.Query(), "show_all")
		r := (&fixture{h: h}).serve(req)
		if (perr == nil) != (r.status == http.StatusOK) {
			t.Fatalf("query %q: parser error %v but status %d", query, perr, r.status)
		}
		if perr != nil {
			oneLine(t, perr)
		}
	})
}

func FuzzProcFiles(f *testing.F) {
	for _, s := range []string{"0.48 0.50 0.63 1/234 5678\n", "", "NaN NaN NaN", "-1 0 0", "1e308 1e308 1e308", "12345.67 100.0\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if load, err := parseLoadAvg(s); err == nil {
			for _, v := range relLoad(load, 2) {
				if v < 0 {
					t.Fatalf("%q: negative relative load %d", s, v)
				}
			}
		}
		if up, err := parseUptime(s); err == nil && up < 0 {
			t.Fatalf("%q: negative uptime %d", s, up)
		}
	})
}

func oneLine(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error %q is not one line", msg)
	}
}
