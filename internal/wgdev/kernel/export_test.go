package kernel

import (
	"context"

	"github.com/wirefleet/wirefleet/internal/wgdev/ctrl"
)

// OpenAdoptingAny runs Open's adopt path on a link of any type, with the kernel's way of
// changing allowed IPs (ReplaceAllowedIPs): on a machine without the module, the tests drive
// a wireguard-go device through everything the kernel backend does except creating the link.
func OpenAdoptingAny(ctx context.Context, cfg Config) (*Device, error) {
	return open(ctx, cfg, openOptions{anyType: true, ctrl: ctrl.Options{NoPerPrefixRemoval: true}})
}
