package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/apiclient"
	"github.com/wirefleet/wirefleet/internal/wgquick"
)

func runNetworkImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("network import", "[-name NAME] FILE [flags]", stderr)
	api := addAPIFlags(fs)
	name := fs.String("name", "", "network name (default: the file name without .conf)")
	endpoint := fs.String("endpoint", "", "host name or IP address clients dial (a server config does not say)")
	pos, err := api.parse(fs, args, "network import", "FILE")
	if err != nil {
		return err
	}
	file := pos[0]
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(file), ".conf")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	// Parse locally first: a broken file fails fast with its line number, before any upload.
	cfg, err := wgquick.Parse(strings.NewReader(string(raw)))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	progress := newProgress(stderr, fmt.Sprintf("importing %d peers into %s", len(cfg.Peers), *name), isTerminal(stderr))
	start := time.Now()
	out, err := c.ImportNetworkProgress(ctx, wire.NetworkImport{Name: *name, Config: string(raw), Endpoint: *endpoint}, progress.update)
	progress.done(err == nil)
	if err != nil {
		return err
	}
	if api.json() {
		return printJSON(stdout, out)
	}
	for _, w := range out.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "imported network %s with %d peers in %s (public key %s)\n", out.Network.Name, out.Peers, time.Since(start).Round(time.Millisecond), out.Network.PublicKey)
	return nil
}

// progress draws a one-line bar on a terminal (upload, then the server's transaction) and
// stays silent otherwise, so that logs and pipes get no control characters.
type progress struct {
	w     io.Writer
	label string
	tty   bool             // draw at all (isTerminal of w, decided by the caller)
	now   func() time.Time // the redraw throttle's clock
	last  time.Time
}

func newProgress(w io.Writer, label string, tty bool) *progress {
	return &progress{w: w, label: label, tty: tty, now: time.Now}
}

var _ apiclient.ProgressFunc = (*progress)(nil).update

func (p *progress) update(sent, total int64) {
	if !p.tty || total <= 0 || (p.now().Sub(p.last) < 100*time.Millisecond && sent < total) {
		return
	}
	p.last = p.now()
	const width = 30
	fill := int(int64(width) * sent / total)
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	state := "uploading"
	if sent >= total {
		state = "server is storing the peers…"
	}
	fmt.Fprintf(p.w, "\r%s [%s] %3d%% %s\x1b[K", p.label, bar, 100*sent/total, state)
}

func (p *progress) done(ok bool) {
	if !p.tty {
		return
	}
	if ok {
		fmt.Fprintf(p.w, "\r%s [%s] 100%% done\x1b[K\n", p.label, strings.Repeat("█", 30))
	} else {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
