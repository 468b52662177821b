// Package qrcode turns a client config into a QR code that the WireGuard mobile apps scan:
// a PNG for the API and the web UI, and a rendering with Unicode half blocks for terminals
// (two modules per character cell, so the code stays square and small enough to scan).
package qrcode

import (
	"fmt"
	"strings"

	"rsc.io/qr"
)

// level M is what qrencode (used by wg-quick guides) picks; it leaves room for ~2 kB
// configs while staying scannable from a screen.
const level = qr.M

// quiet is the margin in modules the QR specification asks for around the code.
const quiet = 2

// PNG encodes text as a QR code PNG image.
func PNG(text string) ([]byte, error) {
	c, err := qr.Encode(text, level)
	if err != nil {
		return nil, fmt.Errorf("encode QR code (config of %d bytes): %w", len(text), err)
	}
	c.Scale = 6
	return c.PNG(), nil
}

// Terminal renders text as a QR code for a terminal with a dark background: light modules
// are printed as blocks, dark ones as spaces, two rows per line with ▀ ▄ █.
func Terminal(text string) (string, error) {
	c, err := qr.Encode(text, level)
	if err != nil {
		return "", fmt.Errorf("encode QR code (config of %d bytes): %w", len(text), err)
	}
	// light reports whether module (x, y) is light, counting the quiet zone as light.
	light := func(x, y int) bool {
		x, y = x-quiet, y-quiet
		if x < 0 || y < 0 || x >= c.Size || y >= c.Size {
			return true
		}
		return !c.Black(x, y)
	}
	n := c.Size + 2*quiet
	var b strings.Builder
	for y := 0; y < n; y += 2 {
		for x := 0; x < n; x++ {
			top, bottom := light(x, y), y+1 < n && light(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}
