package gateway

import (
	"context"
	"errors"
	"log/slog"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// openDevice opens the device with the production backends (wgdev/auto).
func openDevice(ctx context.Context, dc DeviceConfig, key *wirefleet.Key, log *slog.Logger) (wgdev.Device, error) {
	return nil, errors.New("no device backend is built in yet (wgdev/auto is pending)")
}
