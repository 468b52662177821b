package userspace

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"golang.zx2c4.com/wireguard/device"
)

// wgLogger routes wireguard-go's log lines to slog. Verbose lines are formatted only when
// debug logging is on: wireguard-go logs one per peer change, which would otherwise cost
// more than the change itself in bulk applies.
//
// In another namespace, wireguard-go's MTU refresh (an ioctl from whatever thread runs its
// event loop, in our namespace) cannot find the interface; that line is expected there and
// demoted to debug. Consequence: wireguard-go keeps the MTU it read at creation.
func wgLogger(l *slog.Logger, otherNetNS bool) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) {
			if l.Enabled(context.Background(), slog.LevelDebug) {
				l.Debug(fmt.Sprintf(format, args...))
			}
		},
		Errorf: func(format string, args ...any) {
			if otherNetNS && strings.HasPrefix(format, "Failed to load updated MTU") {
				l.Debug(fmt.Sprintf(format, args...))
				return
			}
			l.Warn(fmt.Sprintf(format, args...))
		},
	}
}
