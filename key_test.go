package wirefleet_test

import (
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=", ""},
		{"", "key is empty"},
		{" yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=", "whitespace"},
		{"not-base64!", "not valid base64"},
		{"AAAA", "decodes to 3 bytes, want 32"},
		{"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmkA", "decodes to 33 bytes"},
	}
	for _, tt := range tests {
		k, err := wirefleet.ParseKey(tt.in)
		if tt.wantErr == "" {
			if err != nil || k.String() != tt.in {
				t.Errorf("ParseKey(%q) = %v, %v; want round trip", tt.in, k, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || wirefleet.KindOf(err) != wirefleet.KindInvalid {
			t.Errorf("ParseKey(%q) error = %v; want invalid containing %q", tt.in, err, tt.wantErr)
		}
	}
}

// The RFC 7748 test vector, as `wg pubkey` derives it.
func TestPublicKey(t *testing.T) {
	priv := wirefleet.MustParseKey("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=")
	want := "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
	if got := priv.PublicKey().String(); got != want {
		t.Fatalf("PublicKey = %s, want %s", got, want)
	}
	k, err := wirefleet.GeneratePrivateKey()
	if err != nil || k.IsZero() || k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
		t.Fatalf("GeneratePrivateKey = %v, %v: not a clamped key", k, err)
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=")
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := wirefleet.ParseKey(s)
		if err == nil && k.String() != s {
			t.Fatalf("accepted %q but renders %q", s, k.String())
		}
	})
}
