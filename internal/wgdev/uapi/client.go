package uapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// SocketPath is where a userspace device called name serves UAPI.
func SocketPath(name string) string { return "/var/run/wireguard/" + name + ".sock" }

// Set sends one set operation with body (as AppendSet builds it) to the UAPI socket of the
// userspace device name, and returns the device's error, if any. wgctrl cannot express
// "allowed_ip=-PREFIX"; this is how attached userspace devices get it.
func Set(ctx context.Context, name string, body []byte) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", SocketPath(name))
	if err != nil {
		return fmt.Errorf("connect to UAPI socket of %s: %w", name, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	msg := make([]byte, 0, len(body)+8)
	msg = append(msg, "set=1\n"...)
	msg = append(msg, body...)
	msg = append(msg, '\n')
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("UAPI set on %s: %w", name, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("UAPI set on %s: read answer: %w", name, err)
	}
	line = strings.TrimSpace(line)
	switch line {
	case "errno=0":
		return nil
	case "errno=-22":
		return fmt.Errorf("UAPI set on %s: %w", name, ErrInvalid)
	}
	return fmt.Errorf("UAPI set on %s: device answered %q", name, line)
}

// ErrInvalid is a device's EINVAL answer to a set: a line it does not accept (an old
// wireguard-go and "allowed_ip=-PREFIX", for instance).
var ErrInvalid = errors.New("device refused the configuration (errno=-22, EINVAL)")
