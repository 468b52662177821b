package api

import (
	"net/http"
	"net/netip"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
)

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request, p Principal) error {
	ns, err := s.svc.ListNetworks(r.Context())
	if err != nil {
		return err
	}
	out := wire.NetworkList{Items: make([]wirefleet.Network, 0, len(ns))}
	for _, n := range ns {
		if p.inScope(n.Name) {
			out.Items = append(out.Items, n)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request, p Principal) error {
	var req wire.NetworkCreate
	if err := decodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	if !p.inScope(req.Name) {
		return p.scopeError(req.Name)
	}
	in, err := networkInput(req)
	if err != nil {
		return err
	}
	n, err := s.svc.CreateNetwork(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/networks/"+n.Name)
	writeJSON(w, http.StatusCreated, n)
	return nil
}

// networkInput converts the wire form, naming the field of every bad value.
func networkInput(req wire.NetworkCreate) (control.NetworkInput, error) {
	in := control.NetworkInput{
		Name:       req.Name,
		ListenPort: req.ListenPort,
		Endpoint:   req.Endpoint,
		MTU:        req.MTU,
		Keepalive:  req.Keepalive,
		Allocation: wirefleet.AllocationMode(req.Allocation),
	}
	var err error
	if err = wirefleet.ValidateNetworkName(req.Name); err != nil {
		return in, err
	}
	if req.IPv4 != "" {
		if in.IPv4, err = wirefleet.ParseHostPrefix("ipv4", req.IPv4); err != nil {
			return in, err
		}
	}
	if req.IPv6 != "" {
		if in.IPv6, err = wirefleet.ParseHostPrefix("ipv6", req.IPv6); err != nil {
			return in, err
		}
	}
	if in.Routes, err = parsePrefixes("routes", req.Routes); err != nil {
		return in, err
	}
	if in.DNS, err = wire.ParseAddrs("dns", req.DNS); err != nil {
		return in, err
	}
	return in, nil
}

func parsePrefixes(field string, ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := wirefleet.ParsePrefix(field, s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request, _ Principal) error {
	n, err := s.svc.GetNetwork(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) updateNetwork(w http.ResponseWriter, r *http.Request, _ Principal) error {
	var req wire.NetworkUpdate
	if err := decodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	u := control.NetworkUpdate{
		ListenPort: req.ListenPort,
		Endpoint:   req.Endpoint,
		MTU:        req.MTU,
		Keepalive:  req.Keepalive,
	}
	for _, f := range []struct {
		field string
		in    *string
		out   **netip.Prefix
	}{{"ipv4", req.IPv4, &u.IPv4}, {"ipv6", req.IPv6, &u.IPv6}} {
		if f.in == nil {
			continue
		}
		var p netip.Prefix
		if *f.in != "" {
			var err error
			if p, err = wirefleet.ParseHostPrefix(f.field, *f.in); err != nil {
				return err
			}
		}
		*f.out = &p
	}
	if req.Allocation != nil {
		a := wirefleet.AllocationMode(*req.Allocation)
		u.Allocation = &a
	}
	if req.Routes != nil {
		rs, err := parsePrefixes("routes", *req.Routes)
		if err != nil {
			return err
		}
		u.Routes = &rs
	}
	if req.DNS != nil {
		ds, err := wire.ParseAddrs("dns", *req.DNS)
		if err != nil {
			return err
		}
		u.DNS = &ds
	}
	n, err := s.svc.UpdateNetwork(r.Context(), r.PathValue("network"), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request, _ Principal) error {
	if err := s.svc.DeleteNetwork(r.Context(), r.PathValue("network")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
