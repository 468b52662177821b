package wirefleet

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTokenRules(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	tok := Token{ID: "abcd1234", Roles: []Role{RoleViewer}, Networks: []string{"office"}, ExpiresAt: &exp, Hash: HashTokenSecret("s")}
	if err := tok.Validate(); err != nil {
		t.Fatal(err)
	}
	if !tok.HasRole(RoleViewer) || tok.HasRole(RoleAdmin) || !tok.InScope("office") || tok.InScope("lab") {
		t.Errorf("role/scope checks wrong")
	}
	if tok.Expired(now) || !tok.Expired(exp) {
		t.Errorf("expiry check wrong")
	}
	b, _ := json.Marshal(tok)
	if strings.Contains(string(b), tok.Hash.String()) {
		t.Errorf("token JSON shows the hash: %s", b)
	}
	for _, bad := range []Token{
		{ID: "ab", Roles: []Role{RoleAdmin}, Hash: tok.Hash},
		{ID: "abcd1234", Hash: tok.Hash},
		{ID: "abcd1234", Roles: []Role{"root"}, Hash: tok.Hash},
		{ID: "abcd1234", Roles: []Role{RoleAdmin}},
		{ID: "abcd1234", Roles: []Role{RoleAdmin}, Networks: []string{"Bad"}, Hash: tok.Hash},
	} {
		if err := bad.Validate(); !IsKind(err, KindInvalid) {
			t.Errorf("Validate(%+v) = %v, want invalid", bad, err)
		}
	}
	if _, err := ParseRole("superuser"); err == nil || !strings.Contains(err.Error(), "superuser") {
		t.Errorf("ParseRole error %v does not name the value", err)
	}
}

func FuzzTokenIDFromSecret(f *testing.F) {
	for _, s := range []string{"wft_abcd1234_secret", "wft_abcd1234_", "wft__x", "Bearer x", "", "wft_ABCD1234_x", "wft_abcd_1234_x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := TokenIDFromSecret(s)
		if !ok {
			return
		}
		if !strings.HasPrefix(s, TokenSecretPrefix+id+"_") || len(s) <= len(TokenSecretPrefix+id+"_") || !tokenIDOK(id) {
			t.Fatalf("TokenIDFromSecret(%q) = %q", s, id)
		}
	})
}

func FuzzParsePeerKey(f *testing.F) {
	f.Add(PeerKey("office", Key{1, 2, 3}))
	f.Add("peer/x")
	f.Add("peer/net/a/b")
	f.Fuzz(func(t *testing.T, s string) {
		net, k, err := ParsePeerKey(s)
		if err != nil {
			return
		}
		if PeerKey(net, k) != s {
			t.Fatalf("ParsePeerKey(%q) does not round-trip", s)
		}
	})
}

func TestHashText(t *testing.T) {
	h := Hash{1, 2, 3}
	back, err := ParseHash(h.String())
	if err != nil || back != h {
		t.Fatalf("ParseHash round trip: %v %v", back, err)
	}
	if _, err := ParseHash("zz"); !IsKind(err, KindInvalid) {
		t.Errorf("ParseHash(zz) = %v", err)
	}
	var th TokenHash
	if err := th.UnmarshalText([]byte(HashTokenSecret("x").String())); err != nil || th != HashTokenSecret("x") {
		t.Errorf("TokenHash round trip: %v", err)
	}
	_ = netip.Addr{}
}
