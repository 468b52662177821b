// Package apiclient is the Go client of the REST API /api/v1, used by the CLI (wirefleet
// network|peer|client|token) and by tests. Errors from the server come back as *Error with
// the problem's kind and detail, so the CLI can print one clear line.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
)

// Options configure a Client.
type Options struct {
	// Token is the bearer token secret (wft_…).
	Token string
	// CAFile verifies an https server with this CA bundle instead of the system roots.
	CAFile string
	// CertFile and KeyFile present a client certificate (mTLS).
	CertFile, KeyFile string
	// Timeout bounds each request (default 60 s; imports of large files take a while).
	Timeout time.Duration
	// HTTPClient replaces the built client (tests).
	HTTPClient *http.Client
}

// Client talks to one server.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// New returns a client of the server at base (http://host:port or https://…).
func New(base string, o Options) (*Client, error) {
	if base == "" {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "no server given: pass --server URL or set WIREFLEET_SERVER")
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "server %q is not an http(s) URL like http://127.0.0.1:8080", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, token: o.Token, hc: o.HTTPClient}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if o.CAFile != "" || o.CertFile != "" {
			tc, err := tlsConfig(o)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = tc
		}
		timeout := o.Timeout
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		c.hc = &http.Client{Transport: tr, Timeout: timeout}
	}
	return c, nil
}

func tlsConfig(o Options) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, wirefleet.Errorf(wirefleet.KindInvalid, "CA file %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Error is an error answer of the server (problem+json).
type Error struct {
	Status int
	Kind   wirefleet.Kind
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Detail, e.Status)
}

// Unwrap exposes the kind as a *wirefleet.Error so wirefleet.KindOf works on client errors.
func (e *Error) Unwrap() error { return &wirefleet.Error{Kind: e.Kind, Message: e.Detail} }

// request is one call.
type request struct {
	method, path string
	query        url.Values
	body         any
	accept       string
	progress     ProgressFunc // optional, for large bodies
}

// do sends rq and decodes a JSON answer into out (nil: ignore the body). It returns the raw
// body for non-JSON answers.
func (c *Client) do(ctx context.Context, rq request, out any) ([]byte, error) {
	// rq.path is already escaped (peer keys carry %2F): concatenate, do not re-escape.
	target := c.base.String() + rq.path
	if len(rq.query) > 0 {
		target += "?" + rq.query.Encode()
	}
	var body io.Reader
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
		if rq.progress != nil {
			body = &progressReader{r: body, total: int64(len(b)), f: rq.progress}
		}
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if pr, ok := body.(*progressReader); ok {
			req.ContentLength = pr.total // not chunked: the server's size limit sees it up front
		}
	}
	if rq.accept != "" {
		req.Header.Set("Accept", rq.accept)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &wirefleet.Error{Kind: wirefleet.KindUnavailable,
			Message: fmt.Sprintf("cannot reach the server at %s: %v (is 'wirefleet server' running? set --server or WIREFLEET_SERVER)", c.base, err), Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &wirefleet.Error{Kind: wirefleet.KindUnavailable, Message: fmt.Sprintf("read answer of %s %s: %v", rq.method, rq.path, err), Err: err}
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, Kind: kindOfStatus(resp.StatusCode)}
		var p struct {
			Detail string `json:"detail"`
			Kind   string `json:"kind"`
		}
		if json.Unmarshal(b, &p) == nil && p.Kind != "" {
			e.Kind, e.Detail = wirefleet.Kind(p.Kind), p.Detail
		}
		return nil, e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("decode answer of %s %s: %w", rq.method, rq.path, err)
		}
	}
	return b, nil
}

// kindOfStatus is the inverse of the server's table, for answers without problem+json
// (a proxy in between).
func kindOfStatus(status int) wirefleet.Kind {
	switch status {
	case 400, 405, 413, 415:
		return wirefleet.KindInvalid
	case 401:
		return wirefleet.KindUnauthorized
	case 403:
		return wirefleet.KindForbidden
	case 404:
		return wirefleet.KindNotFound
	case 409:
		return wirefleet.KindConflict
	case 502, 503, 504:
		return wirefleet.KindUnavailable
	default:
		return wirefleet.KindInternal
	}
}

// progressReader reports the bytes read so far of a request body.
type progressReader struct {
	r     io.Reader
	sent  int64
	total int64
	f     ProgressFunc
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	p.f(p.sent, p.total)
	return n, err
}
