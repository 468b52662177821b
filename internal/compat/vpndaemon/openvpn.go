package vpndaemon

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// OpenVPN is what the handler needs from the OpenVPN server processes of the node (their
// management interfaces, found as unix sockets in /run/openvpn-server). The bridge in
// internal/openvpn implements it; a nil OpenVPN means "no OpenVPN process is running".
//
// The handler bounds all OpenVPN work of a request by one budget of at most 2 s. The
// context it passes ends 150 ms before the budget does: implementations query the
// processes concurrently and return what they have when ctx ends; one that ignores ctx is
// no longer waited for once the budget is spent (its answer is then lost).
type OpenVPN interface {
	// Connections lists the clients connected to every process, all of them, unfiltered
	// (the handler drops UNDEF and half-addressed clients). A process that is down, slow or
	// broken contributes nothing: return what the others gave and, optionally, an error
	// describing the failures; the handler logs the error and still uses the list.
	Connections(ctx context.Context) ([]OpenVPNConnection, error)
	// Disconnect sends "kill <commonName>" to every process. It is best effort: a process
	// that does not know the CN is not an error. The CN has been validated (non-empty, no
	// whitespace or control characters).
	Disconnect(ctx context.Context, commonName string) error
}

// OpenVPNConnection is one connected OpenVPN client. An empty IPv4 or IPv6 means the
// process reported none.
type OpenVPNConnection struct {
	CommonName string
	IPv4       string
	IPv6       string
}

// openVPNBudget is the one deadline for all OpenVPN work in a request: the portal gives up
// after 4 s in total, TLS and WireGuard work included.
const openVPNBudget = 2 * time.Second

// openVPNGrace is how long before the handler stops waiting the port's context ends, so
// that a bridge which honours ctx (and returns what the processes that did answer said) is
// always heard; only one that ignores ctx is cut off, at the full budget.
const openVPNGrace = 150 * time.Millisecond

// openVPNContext returns the context for the port's call and the channel that ends the
// handler's wait for it.
func (h *Handler) openVPNContext(ctx context.Context) (context.Context, <-chan time.Time, func()) {
	grace := min(openVPNGrace, h.openvpnBudget/4)
	callCtx, cancel := context.WithTimeout(ctx, h.openvpnBudget-grace)
	timer := time.NewTimer(h.openvpnBudget)
	return callCtx, timer.C, func() { cancel(); timer.Stop() }
}

type connectionJSON struct {
	CommonName string `json:"common_name"`
	IPFour     string `json:"ip_four"`
	IPSix      string `json:"ip_six"`
}

// listed reports whether connection_list shows c: the portal needs a real CN and both
// addresses as strings.
func listed(c OpenVPNConnection) bool {
	return c.CommonName != "" && c.CommonName != "UNDEF" && c.IPv4 != "" && c.IPv6 != ""
}

// connections asks the OpenVPN port for its clients within the request's OpenVPN budget.
// It never fails: whatever could not be fetched in time contributes nothing.
func (h *Handler) connections(ctx context.Context) []OpenVPNConnection {
	if h.openvpn == nil {
		return nil
	}
	ctx, giveUp, cancel := h.openVPNContext(ctx)
	defer cancel()
	type result struct {
		conns []OpenVPNConnection
		err   error
	}
	// Buffered: a call that ignores ctx finishes into the buffer and is collected later.
	ch := make(chan result, 1)
	go func() {
		c, err := h.openvpn.Connections(ctx)
		ch <- result{c, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			h.log.Warn("openvpn: some processes did not answer", "err", res.err, "clients", len(res.conns))
		}
		return res.conns
	case <-giveUp:
		h.log.Warn("openvpn: the bridge ignored its deadline; answering without OpenVPN clients", "budget", h.openvpnBudget)
		return nil
	}
}

func (h *Handler) connectionList(w http.ResponseWriter, r *http.Request) {
	out := struct {
		ConnectionList []connectionJSON `json:"connection_list"`
	}{ConnectionList: []connectionJSON{}}
	for _, c := range h.connections(r.Context()) {
		if listed(c) {
			out.ConnectionList = append(out.ConnectionList, connectionJSON{c.CommonName, c.IPv4, c.IPv6})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) disconnectClient(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	raw, err := single(form, "common_name")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	cn, err := parseCommonName(raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if h.openvpn != nil {
		ctx, giveUp, cancel := h.openVPNContext(r.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- h.openvpn.Disconnect(ctx, cn) }()
		select {
		case err := <-done:
			if err != nil {
				h.log.Warn("openvpn: disconnect incomplete", "common_name", cn, "err", err)
			}
		case <-giveUp:
			h.log.Warn("openvpn: the bridge ignored its deadline; disconnect not confirmed", "common_name", cn, "budget", h.openvpnBudget)
		}
	}
	// Best effort by contract: the portal kills every certificate of a user, most of which
	// are not connected, and only needs to know the request was accepted.
	w.WriteHeader(http.StatusNoContent)
}

// discard is a logger for handlers built without one.
var discard = slog.New(slog.DiscardHandler)
