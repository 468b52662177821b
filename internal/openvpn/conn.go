package openvpn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wirefleet/wirefleet"
)

// Limits that keep a broken or hostile peer from growing memory without bound. A status
// line of a client is ~250 bytes; a million lines is far beyond any real server.
const (
	maxLineBytes     = 64 << 10
	maxResponseLines = 1 << 20
)

// ErrPasswordRequired is returned by Dial when the management interface asks for a
// password (--management … pw-file). Wirefleet does not support it: protect the unix
// socket with file permissions instead (see docs/openvpn.md).
var ErrPasswordRequired = errors.New("openvpn management interface asks for a password; run it without a pw-file and protect the socket by permissions")

// CommandError is an "ERROR: …" answer of OpenVPN to a command.
type CommandError struct {
	Command string
	Message string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("openvpn management: %s: %s", e.Command, e.Message)
}

// Dialer opens management connections. The zero value is ready to use.
type Dialer struct {
	// OnNotification, if set, receives every real-time notification (">…" line) read on
	// the connection, including the >INFO banner. It runs on the reading goroutine and
	// must not block or call back into the Conn.
	OnNotification func(Notification)
}

// Conn is one management session. Its methods are safe for concurrent use; commands are
// serialized because the protocol has no request ids.
type Conn struct {
	nc       net.Conn
	r        *bufio.Reader
	onNotify func(Notification)
	banner   string

	mu     sync.Mutex // guards broken, and serializes commands on nc/r
	broken error      // set once the stream may be out of step (timeout mid-response…)
}

// Dial connects to a management interface ("unix", "/run/openvpn-server/x.sock" or "tcp",
// "127.0.0.1:7505") and waits for OpenVPN's >INFO banner, all within ctx.
func Dial(ctx context.Context, network, address string) (*Conn, error) {
	var d Dialer
	return d.Dial(ctx, network, address)
}

// Dial is like the package function Dial, with d's options.
func (d *Dialer) Dial(ctx context.Context, network, address string) (*Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("openvpn management %s: %w", address, err)
	}
	c, err := d.newConn(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("openvpn management %s: %w", address, err)
	}
	return c, nil
}

// newConn starts a session on an open connection.
func (d *Dialer) newConn(ctx context.Context, nc net.Conn) (*Conn, error) {
	c := &Conn{nc: nc, r: bufio.NewReaderSize(nc, 4096), onNotify: d.OnNotification}
	if err := c.greet(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// greet reads what OpenVPN says on connect: the >INFO banner, or a password prompt
// (which has no line end, so it is peeked for rather than read as a line).
func (c *Conn) greet(ctx context.Context) error {
	stop := c.watch(ctx)
	defer stop()
	// Peek one byte more only while what came so far could still be the prompt: a
	// banner (">INFO…") differs at the first byte, and a short one must not block.
	const prompt = "ENTER PASSWORD:"
	for n := 1; n <= len(prompt); n++ {
		p, err := c.r.Peek(n)
		if err != nil {
			return c.ioError(ctx, "waiting for the banner", err)
		}
		if !strings.HasPrefix(prompt, string(p)) {
			break
		}
		if n == len(prompt) {
			return ErrPasswordRequired
		}
	}
	for {
		s, err := c.readLine()
		if err != nil {
			return c.ioError(ctx, "waiting for the banner", err)
		}
		l := ParseLine(s)
		if l.Kind != LineNotification {
			return fmt.Errorf("unexpected greeting %q, want >INFO (is this an OpenVPN management socket?)", truncate(s, 80))
		}
		c.notify(l)
		if l.Type == "INFO" {
			c.banner = l.Text
			return nil
		}
	}
}

// Banner is the text of the >INFO line OpenVPN sent on connect.
func (c *Conn) Banner() string { return c.banner }

// Close ends the session. OpenVPN then accepts its next management client.
func (c *Conn) Close() error { return c.nc.Close() }

// watch makes reads and writes on nc honour ctx: its deadline, and its cancellation
// (by moving the deadline to the past). The returned func undoes that.
func (c *Conn) watch(ctx context.Context) func() {
	d, _ := ctx.Deadline() // zero: no deadline
	_ = c.nc.SetDeadline(d)
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

func (c *Conn) notify(l Line) {
	if c.onNotify != nil {
		c.onNotify(Notification{Type: l.Type, Payload: l.Text})
	}
}

// readLine reads one line without its CR LF, refusing lines over maxLineBytes.
func (c *Conn) readLine() (string, error) {
	var buf []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxLineBytes {
			return "", fmt.Errorf("line longer than %d bytes", maxLineBytes)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return string(bytes.TrimRight(buf, "\r\n")), nil
	}
}

// ioError turns a read/write error into one that says what happened: ctx's error when
// the deadline or a cancellation interrupted the call.
func (c *Conn) ioError(ctx context.Context, doing string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", doing, ctxErr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: %w", doing, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// command sends cmd and returns the answer: the message of a SUCCESS line (multi false)
// or the data lines before END (multi true). An ERROR answer is a *CommandError.
// Notifications met on the way go to the callback.
func (c *Conn) command(ctx context.Context, cmd string, multi bool) (string, []string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return "", nil, fmt.Errorf("openvpn management: %s: connection unusable after an earlier failure: %w", cmd, c.broken)
	}
	msg, lines, err := c.roundTrip(ctx, cmd, multi)
	var ce *CommandError
	if err != nil && !errors.As(err, &ce) {
		// Whatever was not read yet would be taken as the answer to the next command.
		c.broken = err
		err = fmt.Errorf("openvpn management: %s: %w", cmd, err)
	}
	return msg, lines, err
}

func (c *Conn) roundTrip(ctx context.Context, cmd string, multi bool) (string, []string, error) {
	stop := c.watch(ctx)
	defer stop()
	if _, err := c.nc.Write([]byte(cmd + "\n")); err != nil {
		return "", nil, c.ioError(ctx, "sending", err)
	}
	var data []string
	for {
		s, err := c.readLine()
		if err != nil {
			return "", nil, c.ioError(ctx, "reading the answer", err)
		}
		l := ParseLine(s)
		switch {
		case l.Kind == LineNotification:
			c.notify(l)
			continue
		case l.Kind == LineError && len(data) == 0:
			return "", nil, &CommandError{Command: cmd, Message: l.Text}
		case !multi && l.Kind == LineSuccess:
			return l.Text, nil, nil
		case !multi:
			return "", nil, fmt.Errorf("unexpected answer %q, want SUCCESS or ERROR", truncate(s, 80))
		case l.Kind == LineEnd:
			return "", data, nil
		}
		if len(data) >= maxResponseLines {
			return "", nil, fmt.Errorf("answer longer than %d lines", maxResponseLines)
		}
		data = append(data, s)
	}
}

// Status runs "status 3" and parses it.
func (c *Conn) Status(ctx context.Context) (*Status, error) {
	_, lines, err := c.command(ctx, "status 3", true)
	if err != nil {
		return nil, err
	}
	st, err := ParseStatus(lines, '\t')
	if err != nil {
		return nil, fmt.Errorf("openvpn management: status 3: %w", err)
	}
	return st, nil
}

// Version is the answer to "version".
type Version struct {
	OpenVPN    string // "OpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)] …"
	Management int    // management interface version, 0 if not reported
}

// Version runs "version".
func (c *Conn) Version(ctx context.Context) (Version, error) {
	_, lines, err := c.command(ctx, "version", true)
	if err != nil {
		return Version{}, err
	}
	return parseVersion(lines), nil
}

func parseVersion(lines []string) Version {
	var v Version
	for _, l := range lines {
		k, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch k {
		case "OpenVPN Version":
			v.OpenVPN = val
		case "Management Version", "Management Interface Version":
			v.Management, _ = strconv.Atoi(val)
		}
	}
	return v
}

// maxCommonName is the longest CN "kill" can match: OpenVPN copies the argument into a
// 128-byte buffer, so a longer one would be cut and never match.
const maxCommonName = 127

// ValidCommonName says why OpenVPN's "kill" cannot target cn, or nil if it can. A CN
// must be non-empty UTF-8 without whitespace or control characters (they would change
// the command line) and without ':' (OpenVPN would read "a:b" as IP:port).
func ValidCommonName(cn string) error {
	switch {
	case cn == "":
		return wirefleet.Errorf(wirefleet.KindInvalid, "empty common name")
	case len(cn) > maxCommonName:
		return wirefleet.Errorf(wirefleet.KindInvalid, "common name is %d bytes long; OpenVPN's kill matches at most %d", len(cn), maxCommonName)
	case !utf8.ValidString(cn):
		return wirefleet.Errorf(wirefleet.KindInvalid, "common name %q is not valid UTF-8", cn)
	case strings.Contains(cn, ":"):
		return wirefleet.Errorf(wirefleet.KindInvalid, "common name %q contains ':', which OpenVPN's kill reads as IP:port", cn)
	}
	for _, r := range cn {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return wirefleet.Errorf(wirefleet.KindInvalid, "common name %q contains whitespace or a control character", cn)
		}
	}
	return nil
}

// killCommand quotes cn the way OpenVPN's command-line parser reads it: inside double
// quotes a backslash escapes '"' and '\'. Base64 CNs ('+', '/', '=') need no quoting, but
// quoting keeps a CN starting with '#' or ';' (a comment to the parser) or containing
// quotes intact.
func killCommand(cn string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `kill "` + r.Replace(cn) + `"`
}

// Kill disconnects every client of this process whose certificate CN is cn, and returns
// how many there were: 0 (and no error) when none is connected.
func (c *Conn) Kill(ctx context.Context, cn string) (int, error) {
	if err := ValidCommonName(cn); err != nil {
		return 0, err
	}
	msg, _, err := c.command(ctx, killCommand(cn), false)
	var ce *CommandError
	if errors.As(err, &ce) && strings.HasPrefix(ce.Message, "common name '") && strings.HasSuffix(ce.Message, "' not found") {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	// "common name 'CN' found, N client(s) killed"
	i := strings.LastIndex(msg, "' found, ")
	if i < 0 {
		return 0, fmt.Errorf("openvpn management: kill: unexpected answer %q", truncate(msg, 80))
	}
	nStr, _, _ := strings.Cut(msg[i+len("' found, "):], " ")
	n, err := strconv.Atoi(nStr)
	if err != nil {
		return 0, fmt.Errorf("openvpn management: kill: unexpected answer %q", truncate(msg, 80))
	}
	return n, nil
}

// Exec runs a command answered by one SUCCESS/ERROR line ("pid", "load-stats",
// "bytecount 5", "log on"…) and returns the SUCCESS message.
func (c *Conn) Exec(ctx context.Context, cmd string) (string, error) {
	if err := validCommand(cmd); err != nil {
		return "", err
	}
	msg, _, err := c.command(ctx, cmd, false)
	return msg, err
}

// ExecLines runs a command answered by data lines closed by END ("status 2", "version",
// "log all"…) and returns the data lines.
func (c *Conn) ExecLines(ctx context.Context, cmd string) ([]string, error) {
	if err := validCommand(cmd); err != nil {
		return nil, err
	}
	_, lines, err := c.command(ctx, cmd, true)
	return lines, err
}

// validCommand refuses what would be read as more than one command.
func validCommand(cmd string) error {
	if cmd == "" || strings.ContainsAny(cmd, "\r\n\x00") {
		return wirefleet.Errorf(wirefleet.KindInvalid, "management command %q: empty or has a line break", cmd)
	}
	return nil
}
