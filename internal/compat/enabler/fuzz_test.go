package enabler

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to both decoders: they never panic, and a key they
// accept is exactly the canonical form of the input (no trimming, no re-padding), which is
// what keeps duplicate keys out.
func FuzzDecode(f *testing.F) {
	k := keyA.String()
	for _, s := range []string{
		`{"publicKey":"` + k + `"}`, `{"publicKey":["` + k + `"]}`, `{"publicKey":{"$ne":null}}`,
		`{"publicKey":"` + k + `; reboot #"}`, `{"publicKey":0,"presharedKey":false}`, `[1,2]`, `null`, `{`,
		"publicKey=" + k, "publicKey[a]=b&presharedKey=", "publicKey=%2", `{"publicKey":"\u0000"}`,
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, isJSON bool) {
		var b body
		var err error
		if isJSON {
			b, err = decodeJSON([]byte(raw))
		} else {
			b, err = decodeForm([]byte(raw))
		}
		if err != nil {
			return
		}
		if pub, msg := publicKeyField(b); msg == "" {
			if f := b["publicKey"]; f.kind != "" || f.str != pub.String() {
				t.Fatalf("accepted public key %q from field %+v", pub, f)
			}
		}
		if psk, msg := presharedKeyField(b); msg == "" && psk != nil {
			if f := b["presharedKey"]; f.str != psk.String() {
				t.Fatalf("accepted preshared key %q from field %+v", psk, f)
			}
		}
	})
}

// FuzzCreateClient posts arbitrary bodies: a request either creates exactly one client
// (200) or leaves no trace in the store or on the device.
func FuzzCreateClient(f *testing.F) {
	f.Add(`{"publicKey":"` + keyA.String() + `"}`)
	f.Add(`{"publicKey":"` + keyA.String() + `","presharedKey":"` + pskA.String() + `"}`)
	f.Add(`{"publicKey":"` + keyA.String() + ` peer ` + keyB.String() + ` remove"}`)
	f.Add(`{"publicKey":"$(id)"}`)
	f.Fuzz(func(t *testing.T, raw string) {
		env := newUnitEnv(t, testConfig())
		req := httptest.NewRequest("POST", "/client", strings.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		env.h.ServeHTTP(rec, req)
		ps, _ := env.dev.Peers(context.Background())
		want := 0
		if rec.Code == 200 {
			want = 1
		} else if rec.Code != 400 && rec.Code != 413 {
			t.Fatalf("status %d for %q: %s", rec.Code, raw, rec.Body)
		}
		if len(env.svc.peers) != want || len(ps) != want {
			t.Fatalf("status %d but %d stored and %d on the device", rec.Code, len(env.svc.peers), len(ps))
		}
	})
}
