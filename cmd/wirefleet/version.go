package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/wirefleet/wirefleet"
)

func init() {
	register(command{name: "version", summary: "print the version", run: runVersion})
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wirefleet %s (%s, %s/%s)\n", wirefleet.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
