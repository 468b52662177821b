package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

func TestValidate(t *testing.T) {
	ok := Config{DataDir: "/d", Listen: "127.0.0.1:8080"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"ok", func(*Config) {}, ""},
		{"no data", func(c *Config) { c.DataDir = "" }, "-data"},
		{"bad listen", func(c *Config) { c.Listen = "8080" }, `-listen "8080"`},
		{"cert without key", func(c *Config) { c.TLSCert = "c.pem" }, "-tls-cert and -tls-key"},
		{"ca without tls", func(c *Config) { c.ClientCA = "ca.pem"; c.CNRolesFile = "r.yaml" }, "needs -tls-cert"},
		{"ca without map", func(c *Config) { c.TLSCert, c.TLSKey, c.ClientCA = "c", "k", "ca" }, "-client-ca and -cn-roles"},
		{"full tls", func(c *Config) { c.TLSCert, c.TLSKey, c.ClientCA, c.CNRolesFile = "c", "k", "ca", "r" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	_, closeStore, err := OpenStore(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := CreateTokenOffline(context.Background(), dir, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}}, nil); !wirefleet.IsKind(err, wirefleet.KindConflict) {
		t.Fatalf("second opener: %v, want a conflict", err)
	}
	if err := closeStore(); err != nil {
		t.Fatal(err)
	}
	if _, secret, err := CreateTokenOffline(context.Background(), dir, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}}, nil); err != nil || !strings.HasPrefix(secret, "wft_") {
		t.Fatalf("after close: %q, %v", secret, err)
	}
}

// TestRunServesAndStops: Run serves the API with an offline-created token and returns nil
// when its context ends (SIGTERM in the binary).
func TestRunServesAndStops(t *testing.T) {
	dir := t.TempDir()
	_, secret, err := CreateTokenOffline(context.Background(), dir, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleViewer}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0", NoGateway: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	}()
	re := regexp.MustCompile(`addr=(\S+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("no listening line in %q", logs.String())
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/networks", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET networks: %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + addr + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not stop")
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the log contains the token secret")
	}
}
