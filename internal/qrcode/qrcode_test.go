package qrcode

import (
	"bytes"
	"flag"
	"image/png"
	"strings"
	"testing"

	"rsc.io/qr"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const config = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nAddress = 198.51.100.2/32\n\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nEndpoint = vpn.example.org:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n"

func TestTerminalGolden(t *testing.T) {
	got, err := Terminal(config)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "testdata/config.qr.txt", []byte(got), *update)
}

// TestTerminalMatchesCode decodes the half blocks back into modules and compares them with
// the encoder's matrix, so the rendering is known correct rather than just stable.
func TestTerminalMatchesCode(t *testing.T) {
	out, err := Terminal(config)
	if err != nil {
		t.Fatal(err)
	}
	c, err := qr.Encode(config, level)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	n := c.Size + 2*quiet
	if len(lines) != (n+1)/2 {
		t.Fatalf("%d lines, want %d", len(lines), (n+1)/2)
	}
	for ly, line := range lines {
		runes := []rune(line)
		if len(runes) != n {
			t.Fatalf("line %d has %d cells, want %d", ly, len(runes), n)
		}
		for x, r := range runes {
			top := r == '█' || r == '▀'
			bottom := r == '█' || r == '▄'
			for dy, isLight := range []bool{top, bottom} {
				y := 2*ly + dy
				if y >= n {
					continue
				}
				mx, my := x-quiet, y-quiet
				wantLight := mx < 0 || my < 0 || mx >= c.Size || my >= c.Size || !c.Black(mx, my)
				if isLight != wantLight {
					t.Fatalf("module (%d,%d): light=%v, want %v", mx, my, isLight, wantLight)
				}
			}
		}
	}
}

func TestPNG(t *testing.T) {
	b, err := PNG(config)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if w := img.Bounds().Dx(); w < 100 {
		t.Errorf("image is %d px wide, too small to scan", w)
	}
}

func TestTooLarge(t *testing.T) {
	if _, err := Terminal(strings.Repeat("x", 10000)); err == nil {
		t.Error("a 10 kB text encoded, want an error")
	}
}
