package enabler

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// Test keys (fixed so that messages can be compared exactly).
var (
	serverPriv = wirefleet.MustParseKey("qAuVUEbmcI3ofLsjJmQ6+RtEejoNX+WHs7QOsIccn0Y=")
	keyA       = wirefleet.MustParseKey("RfGgIjkPJC9U6b0OE8UHdnJwAA4hCV1FfQOX1/FaIzo=")
	keyB       = wirefleet.MustParseKey("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
	pskA       = wirefleet.MustParseKey("FIOSD2ErZISlHwFsBRK5RVyd7ENhvJ4x3W101BoewqQ=")
)

func testNetwork() wirefleet.Network {
	return wirefleet.Network{
		Name: "wg0", ListenPort: 51820, IPv4: netip.MustParsePrefix("198.51.100.1/29"),
		Keepalive: 25, Allocation: wirefleet.AllocRandom, MTU: 1420,
		PublicKey: serverPriv.PublicKey(), PrivateKey: wirefleet.NewSecretKey(serverPriv),
	}
}

func testConfig() Config {
	return Config{Network: "wg0", ServerIP: "vpn.example.test", ServerPort: "51820", AllowedIPs: "0.0.0.0/0,::/0"}
}

type unitEnv struct {
	h   *Handler
	svc *fakeService
	dev *wgdevtest.Memory
}

func newUnitEnv(t *testing.T, cfg Config) unitEnv {
	t.Helper()
	svc := newFakeService(testNetwork())
	dev := wgdevtest.NewMemory("wg0")
	gw := NewLocalGateway(svc, dev, "wg0", nil)
	return unitEnv{h: New(cfg, svc, gw, dev), svc: svc, dev: dev}
}

type answer struct {
	Status int
	Body   string
}

func do(h http.Handler, method, path, ctype, body string, hdr ...string) (answer, http.Header) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return answer{rec.Code, rec.Body.String()}, rec.Header()
}

func msgBody(m string) string {
	b, _ := json.Marshal(message{Message: m})
	return string(b)
}

const jsonCT = "application/json"

func TestErrorMessages(t *testing.T) {
	k := keyA.String()
	invalidPub := func(why string) string {
		return msgBody("The public key is invalid: " + why + "; " + keyFormatHint + ", like the output of wg pubkey")
	}
	invalidPSK := func(why string) string {
		return msgBody("The preshared key is invalid: " + why + "; " + keyFormatHint + ", like the output of wg genpsk; omit it, or send null or \"\", for none")
	}
	needed := msgBody(msgKeyNeeded)
	tests := []struct {
		name, method, path, ctype, body string
		want                            answer
	}{
		{"no body", "POST", "/client", "", "", answer{400, needed}},
		{"empty object", "POST", "/client", jsonCT, `{}`, answer{400, needed}},
		{"null", "POST", "/client", jsonCT, `{"publicKey":null}`, answer{400, needed}},
		{"empty string", "POST", "/client", jsonCT, `{"publicKey":""}`, answer{400, needed}},
		{"zero", "POST", "/client", jsonCT, `{"publicKey":0}`, answer{400, needed}},
		{"zero float", "POST", "/client", jsonCT, `{"publicKey":-0.0e3}`, answer{400, needed}},
		{"false", "POST", "/client", jsonCT, `{"publicKey":false}`, answer{400, needed}},
		{"top-level array", "POST", "/client", jsonCT, `["` + k + `"]`, answer{400, needed}},
		{"wrong content type", "POST", "/client", "text/plain", `{"publicKey":"` + k + `"}`, answer{400, needed}},
		{"true", "POST", "/client", jsonCT, `{"publicKey":true}`, answer{400, invalidPub("it is a JSON boolean, not a string")}},
		{"number", "POST", "/client", jsonCT, `{"publicKey":12}`, answer{400, invalidPub("it is a JSON number, not a string")}},
		{"array key", "POST", "/client", jsonCT, `{"publicKey":["` + k + `"]}`, answer{400, invalidPub("it is a JSON array, not a string")}},
		{"nosql operator", "DELETE", "/client", jsonCT, `{"publicKey":{"$ne":null}}`, answer{400, invalidPub("it is a JSON object, not a string")}},
		{"padded", "POST", "/client", jsonCT, `{"publicKey":" ` + k + `"}`, answer{400, invalidPub("it has leading or trailing whitespace")}},
		{"newline", "PUT", "/client/enable", jsonCT, `{"publicKey":"` + k + `\n"}`, answer{400, invalidPub("it has leading or trailing whitespace")}},
		{"short", "POST", "/client", jsonCT, `{"publicKey":"abc"}`, answer{400, invalidPub("it is 3 characters long")}},
		{"shell injection", "POST", "/client", jsonCT, `{"publicKey":"` + k + `; touch /tmp/x #"}`, answer{400, invalidPub("it is 60 characters long")}},
		{"argument injection", "PUT", "/client/disable", jsonCT, `{"publicKey":"` + k + ` peer ` + keyB.String() + ` remove"}`, answer{400, invalidPub("it is 101 characters long")}},
		{"44 chars not base64", "POST", "/client", jsonCT, `{"publicKey":"` + strings.Repeat("$", 43) + `="}`, answer{400, invalidPub("it is not canonical standard base64 of 32 bytes")}},
		{"non-canonical base64", "POST", "/client", jsonCT, `{"publicKey":"` + k[:42] + `p="}`, answer{400, invalidPub("it is not canonical standard base64 of 32 bytes")}},
		{"all zeros", "POST", "/client", jsonCT, `{"publicKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`, answer{400, msgBody("The public key is invalid: it is all zeros; " + keyFormatHint + ", like the output of wg pubkey")}},
		{"psk invalid", "POST", "/client", jsonCT, `{"publicKey":"` + k + `","presharedKey":"x\"; rm -rf /"}`, answer{400, invalidPSK("it is 12 characters long")}},
		{"psk number", "POST", "/client", jsonCT, `{"publicKey":"` + k + `","presharedKey":0}`, answer{400, invalidPSK("it is a JSON number, not a string")}},
		{"malformed json", "POST", "/client", jsonCT, `{"publicKey":`, answer{400, msgBody("Malformed JSON in the request body: unexpected EOF")}},
		{"trailing data", "POST", "/client", jsonCT, `{} {}`, answer{400, msgBody("Malformed JSON in the request body: unexpected data after the top-level value")}},
		{"form bracket is not an object", "POST", "/client", "application/x-www-form-urlencoded", `publicKey[$ne]=1`, answer{400, needed}},
		{"form repeated", "DELETE", "/client", "application/x-www-form-urlencoded", `publicKey=a&publicKey=b`, answer{400, invalidPub("it is a JSON array, not a string")}},
		{"form malformed", "DELETE", "/client", "application/x-www-form-urlencoded", `publicKey=%zz`, answer{400, msgBody(`Malformed application/x-www-form-urlencoded request body: invalid URL escape "%zz"`)}},
		{"delete unknown", "DELETE", "/client", jsonCT, `{"publicKey":"` + k + `"}`, answer{400, msgBody("Client with public key " + k + " not found")}},
		{"enable unknown", "PUT", "/client/enable", jsonCT, `{"publicKey":"` + k + `"}`, answer{400, msgBody("Client with public key " + k + " not found")}},
		{"disable unknown", "PUT", "/client/disable", jsonCT, `{"publicKey":"` + k + `"}`, answer{400, msgBody("Client with public key " + k + " not found")}},
		{"disable needs key", "PUT", "/client/disable", jsonCT, `{"publicKey":0}`, answer{400, needed}},
		{"too large", "POST", "/client", jsonCT, `{"publicKey":"` + strings.Repeat("A", MaxBodyBytes) + `"}`, answer{413, msgBody("request entity too large: the body is limited to 100 kB")}},
		{"unknown path", "GET", "/clients", "", "", answer{404, msgBody("Cannot GET /clients")}},
		{"unknown method", "GET", "/client", "", "", answer{404, msgBody("Cannot GET /client")}},
		{"two trailing slashes", "POST", "/client//", jsonCT, `{}`, answer{404, msgBody("Cannot POST /client//")}},
		{"case and slash", "POST", "/CLIENT/", jsonCT, `{}`, answer{400, needed}},
		{"version", "GET", "/Version/", "", "", answer{200, `{"enabler":"VPN enabler","version":"` + wirefleet.Version + `"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newUnitEnv(t, testConfig())
			got, hdr := do(env.h, tt.method, tt.path, tt.ctype, tt.body)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s %s %s: answer mismatch (-want +got):\n%s", tt.method, tt.path, tt.body, diff)
			}
			if ct := hdr.Get("Content-Type"); got.Status >= 400 && ct != "application/json; charset=utf-8" {
				t.Errorf("error Content-Type = %q, want JSON", ct)
			}
			if len(env.svc.peers) != 0 {
				t.Errorf("a rejected request left %d peers in the store", len(env.svc.peers))
			}
			if ps, _ := env.dev.Peers(context.Background()); len(ps) != 0 {
				t.Errorf("a rejected request left %d peers on the device", len(ps))
			}
		})
	}
}

func postClient(t *testing.T, h http.Handler, pub wirefleet.Key, psk string) (answer, newClientAnswer) {
	t.Helper()
	body := `{"publicKey":"` + pub.String() + `"`
	if psk != "" {
		body += `,"presharedKey":` + psk
	}
	got, _ := do(h, "POST", "/client", jsonCT, body+"}")
	var a newClientAnswer
	if got.Status == 200 {
		if err := json.Unmarshal([]byte(got.Body), &a); err != nil {
			t.Fatalf("POST /client answer %q: %v", got.Body, err)
		}
	}
	return got, a
}

func TestClientLifecycleUnit(t *testing.T) {
	ctx := context.Background()
	env := newUnitEnv(t, testConfig())
	got, a := postClient(t, env.h, keyA, `"`+pskA.String()+`"`)
	if got.Status != 200 {
		t.Fatalf("create: %+v", got)
	}
	want := newClientAnswer{ServerPublicKey: serverPriv.PublicKey().String(), ServerIP: "vpn.example.test", ServerPort: "51820",
		ClientIP: a.ClientIP, AllowedIPs: "0.0.0.0/0,::/0", Message: "Peer added successfully"}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("create answer (-want +got):\n%s", diff)
	}
	if !strings.Contains(got.Body, `"serverPort":"51820"`) {
		t.Errorf("serverPort is not a JSON string: %s", got.Body)
	}
	ps, _ := env.dev.Peers(ctx)
	wantPeer := wgdev.Peer{PublicKey: keyA, PresharedKey: &pskA, AllowedIPs: []netip.Prefix{netip.MustParsePrefix(a.ClientIP)}, PersistentKeepalive: 25 * time.Second}
	if len(ps) != 1 || !cmp.Equal(ps[0].Peer, wantPeer, cmpNet) {
		t.Fatalf("device peers = %+v, want %+v", ps, wantPeer)
	}
	// Duplicate.
	got, _ = postClient(t, env.h, keyA, "")
	if diff := cmp.Diff(answer{400, msgBody(msgExists(keyA))}, got); diff != "" {
		t.Errorf("duplicate (-want +got):\n%s", diff)
	}
	// Disable twice, enable twice: 204 each time, device follows.
	for _, step := range []struct {
		path string
		on   bool
	}{{"/client/disable", false}, {"/client/disable", false}, {"/client/enable", true}, {"/client/enable", true}} {
		got, _ := do(env.h, "PUT", step.path, jsonCT, `{"publicKey":"`+keyA.String()+`"}`)
		if diff := cmp.Diff(answer{204, ""}, got); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", step.path, diff)
		}
		ps, _ := env.dev.Peers(ctx)
		if (len(ps) == 1) != step.on {
			t.Fatalf("after %s the device has %d peers", step.path, len(ps))
		}
	}
	// Delete a disabled client.
	do(env.h, "PUT", "/client/disable", jsonCT, `{"publicKey":"`+keyA.String()+`"}`)
	got, _ = do(env.h, "DELETE", "/client", "application/x-www-form-urlencoded", "publicKey="+strings.ReplaceAll(strings.ReplaceAll(keyA.String(), "+", "%2B"), "/", "%2F"))
	if diff := cmp.Diff(answer{200, ""}, got); diff != "" {
		t.Fatalf("delete (-want +got):\n%s", diff)
	}
	if len(env.svc.peers) != 0 {
		t.Errorf("store still has %d peers", len(env.svc.peers))
	}
}

func TestDeviceFailureLeavesNoTrace(t *testing.T) {
	svc := newFakeService(testNetwork())
	dev := wgdevtest.NewMemory("wg0")
	h := New(testConfig(), svc, failingGateway{errors.New("device gone")}, dev)
	got, _ := postClient(t, h, keyA, "")
	if diff := cmp.Diff(answer{500, msgBody("Cannot add the client to the WireGuard device: device gone")}, got); diff != "" {
		t.Errorf("create (-want +got):\n%s", diff)
	}
	if len(svc.peers) != 0 {
		t.Errorf("the store kept a client the device refused")
	}
	// Enable/disable failures revert the flag; delete failures restore the record.
	if _, err := svc.CreatePeer(context.Background(), controlInput(keyB)); err != nil {
		t.Fatal(err)
	}
	got, _ = do(h, "PUT", "/client/disable", jsonCT, `{"publicKey":"`+keyB.String()+`"}`)
	if got.Status != 500 || !svc.peers[keyB].Enabled {
		t.Errorf("disable on a failing device: %+v, enabled=%v (want 500 and still enabled)", got, svc.peers[keyB].Enabled)
	}
	before := svc.peers[keyB]
	got, _ = do(h, "DELETE", "/client", jsonCT, `{"publicKey":"`+keyB.String()+`"}`)
	if got.Status != 500 || !cmp.Equal(svc.peers[keyB].Addresses, before.Addresses, cmpNet) {
		t.Errorf("delete on a failing device: %+v, record %+v (want 500 and the record back)", got, svc.peers[keyB])
	}
}

func TestStoreFailureIs500(t *testing.T) {
	env := newUnitEnv(t, testConfig())
	env.svc.failGet = errors.New("database is locked")
	got, _ := do(env.h, "PUT", "/client/enable", jsonCT, `{"publicKey":"`+keyA.String()+`"}`)
	if diff := cmp.Diff(answer{500, msgBody("Cannot read the client: database is locked")}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCapacityUnit(t *testing.T) {
	env := newUnitEnv(t, testConfig()) // /29: 8 - 3 = 5 clients
	seen := map[string]bool{}
	for i := range 5 {
		k, _ := wirefleet.GeneratePrivateKey()
		got, a := postClient(t, env.h, k.PublicKey(), "")
		if got.Status != 200 || seen[a.ClientIP] {
			t.Fatalf("client %d: %+v (seen %v)", i, got, seen)
		}
		seen[a.ClientIP] = true
	}
	k, _ := wirefleet.GeneratePrivateKey()
	got, _ := postClient(t, env.h, k.PublicKey(), "")
	if diff := cmp.Diff(answer{400, msgBody(msgCapacity)}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAuth(t *testing.T) {
	cfg := testConfig()
	cfg.Tokens = []string{"s3cret-token"}
	env := newUnitEnv(t, cfg)
	got, hdr := do(env.h, "GET", "/keys", "", "")
	if got.Status != 401 || hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %+v", got)
	}
	if got, _ := do(env.h, "GET", "/keys", "", "", "Authorization", "Bearer wrong"); got.Status != 401 {
		t.Errorf("wrong token: %+v", got)
	}
	if got, _ := do(env.h, "GET", "/keys", "", "", "Authorization", "Bearer s3cret-token"); got.Status != 200 {
		t.Errorf("right token: %+v", got)
	}
	if got, _ := do(env.h, "GET", "/health", "", ""); got.Status != 200 {
		t.Errorf("/health must stay public for probes: %+v", got)
	}
	if got, _ := do(env.h, "POST", "/client", jsonCT, `{}`); got.Status != 401 {
		t.Errorf("POST /client without token: %+v", got)
	}
}

func TestKeys(t *testing.T) {
	env := newUnitEnv(t, testConfig())
	got, hdr := do(env.h, "GET", "/keys", "", "")
	if got.Status != 200 || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("%+v %v", got, hdr)
	}
	var k struct{ Public, Private, Preshared string }
	if err := json.Unmarshal([]byte(got.Body), &k); err != nil {
		t.Fatal(err)
	}
	priv, err1 := wirefleet.ParseKey(k.Private)
	pub, err2 := wirefleet.ParseKey(k.Public)
	_, err3 := wirefleet.ParseKey(k.Preshared)
	if err := errors.Join(err1, err2, err3); err != nil || priv.PublicKey() != pub {
		t.Errorf("keys %+v: %v (public matches private: %v)", k, err, priv.PublicKey() == pub)
	}
	if len(env.svc.peers) != 0 {
		t.Error("GET /keys stored something")
	}
}

func TestHealth(t *testing.T) {
	env := newUnitEnv(t, testConfig())
	if got, _ := do(env.h, "GET", "/health", "", ""); got != (answer{200, ""}) {
		t.Errorf("healthy: %+v", got)
	}
	cfg := testConfig()
	cfg.Network = "gone"
	env = newUnitEnv(t, cfg)
	if got, _ := do(env.h, "GET", "/health", "", ""); got.Status != 500 {
		t.Errorf("store cannot find the network: %+v", got)
	}
}

func TestAPIExport(t *testing.T) {
	env := newUnitEnv(t, testConfig())
	got, _ := do(env.h, "GET", "/api-export", "", "")
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(got.Body), &doc); err != nil || got.Status != 200 {
		t.Fatalf("%d %v", got.Status, err)
	}
	var ops, want []string
	for p, ms := range doc.Paths {
		for m := range ms {
			ops = append(ops, strings.ToUpper(m)+" "+p)
		}
	}
	for _, r := range routes {
		want = append(want, r.method+" "+r.path)
	}
	if diff := cmp.Diff(want, ops, cmpSorted); diff != "" || len(ops) != 10 {
		t.Errorf("OpenAPI operations differ from the routes (-routes +doc):\n%s", diff)
	}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func controlInput(k wirefleet.Key) control.PeerInput {
	return control.PeerInput{Network: "wg0", PublicKey: k, Name: PeerName}
}

// cmpNet compares the netip types (comparable structs with unexported fields).
var cmpNet = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{})
