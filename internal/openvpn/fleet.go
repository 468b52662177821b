package openvpn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultSocketDir is where Debian's openvpn-server@.service units put their management
// sockets (with "management /run/openvpn-server/NAME.sock unix" in the config).
const DefaultSocketDir = "/run/openvpn-server"

// MaxTimeout bounds all management work of one Fleet call: the eduVPN portal gives up
// after 4 s per request, TLS and WireGuard work included.
const MaxTimeout = 2 * time.Second

// FleetConfig configures a Fleet.
type FleetConfig struct {
	// Dir holds the management sockets, one "*.sock" per OpenVPN process;
	// DefaultSocketDir if empty.
	Dir string
	// Timeout is the one deadline for all processes in one call; 0 or more than
	// MaxTimeout: MaxTimeout.
	Timeout time.Duration
	// Logger for processes that fail; discarded if nil.
	Logger *slog.Logger
	// Dialer opens the management connections (for its notification callback).
	Dialer Dialer
}

// Fleet is every OpenVPN server process of the node, found anew at each call by listing
// Dir, so processes may come and go. Calls query all processes concurrently under one
// deadline; a process that is down, slow or broken contributes nothing and is counted as
// a management error, the others still answer. Fleet is safe for concurrent use.
type Fleet struct {
	dir     string
	timeout time.Duration
	log     *slog.Logger
	dialer  Dialer

	mu   sync.Mutex          // guards errs
	errs map[ErrorKey]uint64 // management errors since start
}

// ErrorKey identifies a kind of management error: the process (socket name without
// ".sock"; empty for the socket directory itself) and the operation (discover, status,
// kill).
type ErrorKey struct {
	Process string
	Op      string
}

// NewFleet returns a Fleet for cfg.
func NewFleet(cfg FleetConfig) *Fleet {
	f := &Fleet{dir: cfg.Dir, timeout: cfg.Timeout, log: cfg.Logger, dialer: cfg.Dialer, errs: map[ErrorKey]uint64{}}
	if f.dir == "" {
		f.dir = DefaultSocketDir
	}
	if f.timeout <= 0 || f.timeout > MaxTimeout {
		f.timeout = MaxTimeout
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// Process is one OpenVPN process: its management socket and its name.
type Process struct {
	Name   string // socket file name without ".sock"
	Socket string // path of the unix socket
}

// Processes lists the management sockets now in the socket directory. A missing
// directory means no OpenVPN runs: no processes, no error. An unreadable one (see
// docs/openvpn.md on permissions) is an error.
func (f *Fleet) Processes() ([]Process, error) {
	entries, err := os.ReadDir(f.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		f.countError("", "discover")
		return nil, fmt.Errorf("list OpenVPN management sockets: %w (the daemon needs read and search permission on %s)", err, f.dir)
	}
	var ps []Process
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sock")
		if !ok || name == "" || e.IsDir() {
			continue
		}
		ps = append(ps, Process{Name: name, Socket: filepath.Join(f.dir, e.Name())})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps, nil
}

// ProcessStatus is what one process answered to "status 3".
type ProcessStatus struct {
	Process
	Status *Status // nil when Err is set
	Err    error
	Took   time.Duration
}

// Statuses asks every process for its status, concurrently, within the Fleet's deadline
// (or ctx's, if sooner). It returns one entry per process found, in name order; a process
// that failed has Err set. The error is non-nil only when the socket directory cannot be
// listed.
func (f *Fleet) Statuses(ctx context.Context) ([]ProcessStatus, error) {
	procs, err := f.Processes()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	out := make([]ProcessStatus, len(procs))
	f.each(procs, func(i int, p Process) {
		start := time.Now()
		st, err := f.status(ctx, p)
		out[i] = ProcessStatus{Process: p, Status: st, Err: err, Took: time.Since(start)}
		if err != nil {
			f.countError(p.Name, "status")
			f.log.Warn("openvpn: process did not answer status", "process", p.Name, "socket", p.Socket, "err", err)
		}
	})
	return out, nil
}

func (f *Fleet) status(ctx context.Context, p Process) (*Status, error) {
	c, err := f.dialer.Dial(ctx, "unix", p.Socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Status(ctx)
}

// each runs fn for every process concurrently and waits for all. fn must return once
// the deadline of its ctx passes (Conn calls do).
func (f *Fleet) each(procs []Process, fn func(int, Process)) {
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i, p)
		}()
	}
	wg.Wait()
}

// Connection is one client connected to one of the processes.
type Connection struct {
	Process string
	Client
}

// Connections lists the authenticated clients of every process (clients still shown as
// "UNDEF" are left out; clients without a virtual address are kept, callers that need
// one check VirtualIPv4/VirtualIPv6). Processes that failed contribute nothing; the
// error then says which, and the list still holds the others' clients.
func (f *Fleet) Connections(ctx context.Context) ([]Connection, error) {
	sts, err := f.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	var out []Connection
	var errs []error
	for _, ps := range sts {
		if ps.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ps.Name, ps.Err))
			continue
		}
		for _, c := range ps.Status.Clients {
			if c.CommonName == UndefCommonName || c.CommonName == "" {
				continue
			}
			out = append(out, Connection{Process: ps.Name, Client: c})
		}
	}
	return out, errors.Join(errs...)
}

// ClientCount is the number of authenticated clients over all processes that answered.
func (f *Fleet) ClientCount(ctx context.Context) (int, error) {
	cs, err := f.Connections(ctx)
	return len(cs), err
}

// Disconnect sends "kill CN" to every process and returns how many clients were
// disconnected in all. It is best effort: a process that does not know the CN is not an
// error, and a process that fails does not stop the others (the error then names it).
// An invalid CN (see ValidCommonName) is refused before any process is asked.
func (f *Fleet) Disconnect(ctx context.Context, cn string) (int, error) {
	if err := ValidCommonName(cn); err != nil {
		return 0, err
	}
	procs, err := f.Processes()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	killed := make([]int, len(procs))
	errs := make([]error, len(procs))
	f.each(procs, func(i int, p Process) {
		killed[i], errs[i] = f.kill(ctx, p, cn)
		if errs[i] != nil {
			f.countError(p.Name, "kill")
			f.log.Warn("openvpn: kill failed", "process", p.Name, "common_name", cn, "err", errs[i])
			errs[i] = fmt.Errorf("%s: %w", p.Name, errs[i])
		} else if killed[i] > 0 {
			f.log.Info("openvpn: client disconnected", "process", p.Name, "common_name", cn, "clients", killed[i])
		}
	})
	total := 0
	for _, n := range killed {
		total += n
	}
	return total, errors.Join(errs...)
}

func (f *Fleet) kill(ctx context.Context, p Process, cn string) (int, error) {
	c, err := f.dialer.Dial(ctx, "unix", p.Socket)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.Kill(ctx, cn)
}

// ManagementErrors returns the number of management errors since the Fleet was made, by
// process and operation.
func (f *Fleet) ManagementErrors() map[ErrorKey]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[ErrorKey]uint64, len(f.errs))
	for k, v := range f.errs {
		m[k] = v
	}
	return m
}

func (f *Fleet) countError(process, op string) {
	f.mu.Lock()
	f.errs[ErrorKey{process, op}]++
	f.mu.Unlock()
}
