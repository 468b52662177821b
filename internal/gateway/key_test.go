package gateway

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyCreatedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "gateway")
	log := slog.New(slog.DiscardHandler)
	k1, err := loadOrCreateKey(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, keyFile): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", path, st.Mode().Perm(), want)
		}
	}
	k2, err := loadOrCreateKey(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 {
		t.Error("second start generated a new key; want the stored one")
	}
	b, _ := os.ReadFile(filepath.Join(dir, keyFile))
	if strings.TrimSpace(string(b)) != k1.String() {
		t.Errorf("key file %q, want the base64 key as wg genkey writes it", b)
	}
}

func TestKeyFileRefused(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"world readable", "", 0o644, "has mode 0644; it must be readable by its owner only"},
		{"garbage", "not a key\n", 0o600, "is not a WireGuard private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			content := tc.content
			if content == "" {
				content = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n"
			}
			path := filepath.Join(dir, keyFile)
			if err := os.WriteFile(path, []byte(content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := loadOrCreateKey(dir, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
