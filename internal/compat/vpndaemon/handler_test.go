package vpndaemon

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRouting(t *testing.T) {
	tests := []struct {
		method, target string
		wantStatus     int
		wantAllow      string
	}{
		{"GET", "/i/node", 200, ""},
		{"HEAD", "/i/node", 200, ""},
		{"GET", "//i/node", 200, ""},
		{"GET", "//w/peer_list?show_all=yes", 200, ""},
		{"GET", "/w/peer_list?show_all=no", 200, ""},
		{"GET", "/o/connection_list", 200, ""},
		{"GET", "/", 404, ""},
		{"GET", "/i/node/", 404, ""},
		{"GET", "/i/nodes", 404, ""},
		{"GET", "/w/add_peer/x", 404, ""},
		{"POST", "/i/node", 405, "GET, HEAD"},
		{"DELETE", "/w/peer_list", 405, "GET, HEAD"},
		{"GET", "/w/add_peer", 405, "POST"},
		{"PUT", "/w/remove_peer", 405, "POST"},
		{"GET", "/o/disconnect_client", 405, "POST"},
		{"GET", "/w/peer_list?show_all=true", 400, ""},
		{"GET", "/w/peer_list?show_all=", 400, ""},
		{"GET", "/w/peer_list?show_all=YES", 400, ""},
		{"GET", "/w/peer_list?show_all=yes&show_all=no", 400, ""},
		{"GET", "/i/node?include_client_peer_count=1", 400, ""},
		{"GET", "/i/node?include_client_peer_count=yes", 200, ""},
	}
	f := newFixture(t)
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			r := f.do(t, tc.method, tc.target, "")
			if r.status != tc.wantStatus {
				t.Errorf("status %d (%q), want %d", r.status, r.body, tc.wantStatus)
			}
			if got := r.header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow %q, want %q", got, tc.wantAllow)
			}
			if r.status >= 400 && (r.header.Get("Content-Type") != "text/plain; charset=utf-8" || strings.Count(r.body, "\n") != 1) {
				t.Errorf("error answer %q (%s), want one plain-text line", r.body, r.header.Get("Content-Type"))
			}
		})
	}
}

// TestWireFormat talks HTTP/1.1 on a socket as the portal does (Host and Accept only, a
// node URL ending in "/"), because a ServeMux-style redirect or a Go-client nicety would
// hide what the portal really gets.
func TestWireFormat(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	tests := []struct {
		request    string
		wantStatus string
		wantBody   string
	}{
		{"GET //i/node HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", "HTTP/1.1 200 OK", `"cpu_count":2`},
		{"POST //w/add_peer HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", "HTTP/1.1 204 No Content", ""},
		{"GET //w/peer_list?show_all=yes HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", "HTTP/1.1 200 OK", keyA},
		{"GET /nope HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", "HTTP/1.1 404 Not Found", "not found"},
	}
	form := portalForm(keyA, "198.51.100.9/32", "fd00::9/128")
	for _, tc := range tests {
		req := tc.request
		if strings.Contains(req, "%d") {
			req = fmt.Sprintf(req, len(form), form)
		}
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if got := resp.Proto + " " + resp.Status; got != tc.wantStatus {
			t.Errorf("%q: status %q, want %q", strings.SplitN(req, "\r\n", 2)[0], got, tc.wantStatus)
		}
		if !strings.Contains(string(body), tc.wantBody) {
			t.Errorf("%q: body %q does not contain %q", strings.SplitN(req, "\r\n", 2)[0], body, tc.wantBody)
		}
		if resp.StatusCode == 200 && resp.ContentLength != int64(len(body)) {
			t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
		}
	}
}

func TestSquashSlashes(t *testing.T) {
	got := []string{}
	for _, p := range []string{"/i/node", "//i/node", "///w//peer_list", "/", "//"} {
		got = append(got, squashSlashes(p))
	}
	if diff := cmp.Diff([]string{"/i/node", "/i/node", "/w/peer_list", "/", "/"}, got); diff != "" {
		t.Error(diff)
	}
}
