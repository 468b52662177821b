package routing

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ip(s string) netip.Addr { return netip.MustParseAddr("198.51.100." + s) }

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestCompute(t *testing.T) {
	self := ip("1")
	tests := []struct {
		name    string
		direct  []netip.Addr
		adverts map[netip.Addr][]Advert
		current map[netip.Addr]Route
		want    map[netip.Addr]Route
	}{
		{
			name:   "direct peers are hop 0",
			direct: []netip.Addr{ip("2"), ip("3")},
			want:   map[netip.Addr]Route{ip("2"): {Dest: ip("2")}, ip("3"): {Dest: ip("3")}},
		},
		{
			name:    "distant node via gateway",
			direct:  []netip.Addr{ip("10")},
			adverts: map[netip.Addr][]Advert{ip("10"): {{Dest: ip("2")}, {Dest: self}}},
			want: map[netip.Addr]Route{ip("10"): {Dest: ip("10")},
				ip("2"): {Dest: ip("2"), Via: ip("10"), Path: []netip.Addr{ip("10")}}},
		},
		{
			name:   "lowest hop count wins",
			direct: []netip.Addr{ip("10"), ip("11")},
			adverts: map[netip.Addr][]Advert{
				ip("10"): {{Dest: ip("2"), Path: []netip.Addr{ip("12")}}},
				ip("11"): {{Dest: ip("2")}},
			},
			want: map[netip.Addr]Route{ip("10"): {Dest: ip("10")}, ip("11"): {Dest: ip("11")},
				ip("2"): {Dest: ip("2"), Via: ip("11"), Path: []netip.Addr{ip("11")}}},
		},
		{
			name:   "tie keeps the gateway in use",
			direct: []netip.Addr{ip("10"), ip("11")},
			adverts: map[netip.Addr][]Advert{
				ip("10"): {{Dest: ip("2")}},
				ip("11"): {{Dest: ip("2")}},
			},
			current: map[netip.Addr]Route{ip("2"): {Dest: ip("2"), Via: ip("11"), Path: []netip.Addr{ip("11")}}},
			want: map[netip.Addr]Route{ip("10"): {Dest: ip("10")}, ip("11"): {Dest: ip("11")},
				ip("2"): {Dest: ip("2"), Via: ip("11"), Path: []netip.Addr{ip("11")}}},
		},
		{
			name:   "tie without incumbent: lowest gateway",
			direct: []netip.Addr{ip("11"), ip("10")},
			adverts: map[netip.Addr][]Advert{
				ip("11"): {{Dest: ip("2")}},
				ip("10"): {{Dest: ip("2")}},
			},
			want: map[netip.Addr]Route{ip("10"): {Dest: ip("10")}, ip("11"): {Dest: ip("11")},
				ip("2"): {Dest: ip("2"), Via: ip("10"), Path: []netip.Addr{ip("10")}}},
		},
		{
			name:    "path through self is a loop",
			direct:  []netip.Addr{ip("10")},
			adverts: map[netip.Addr][]Advert{ip("10"): {{Dest: ip("2"), Path: []netip.Addr{self}}}},
			want:    map[netip.Addr]Route{ip("10"): {Dest: ip("10")}},
		},
		{
			name:    "direct beats any learned route",
			direct:  []netip.Addr{ip("10"), ip("2")},
			adverts: map[netip.Addr][]Advert{ip("10"): {{Dest: ip("2")}}},
			want:    map[netip.Addr]Route{ip("10"): {Dest: ip("10")}, ip("2"): {Dest: ip("2")}},
		},
		{
			name:    "adverts of a dead (non-direct) peer are ignored: routes withdrawn",
			direct:  []netip.Addr{ip("11")},
			adverts: map[netip.Addr][]Advert{ip("10"): {{Dest: ip("2")}}},
			want:    map[netip.Addr]Route{ip("11"): {Dest: ip("11")}},
		},
		{
			name:    "over-long paths ignored",
			direct:  []netip.Addr{ip("10")},
			adverts: map[netip.Addr][]Advert{ip("10"): {{Dest: ip("2"), Path: make([]netip.Addr, MaxHops)}}},
			want:    map[netip.Addr]Route{ip("10"): {Dest: ip("10")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(self, tc.direct, tc.adverts, tc.current, nil)
			if diff := cmp.Diff(tc.want, got, cmpAddr); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputeNeedsConfirmedLinks(t *testing.T) {
	self := ip("1")
	// real links: 1-10, 10-2, 2-3. Gateway 11 (a key holder) claims 2 and 3 are its direct
	// peers, which would be one hop shorter for 3.
	links := map[[2]netip.Addr]bool{{ip("10"), ip("2")}: true, {ip("2"), ip("3")}: true}
	confirms := func(node, up netip.Addr) bool {
		return links[[2]netip.Addr{up, node}] || links[[2]netip.Addr{node, up}]
	}
	adverts := map[netip.Addr][]Advert{
		ip("10"): {{Dest: ip("2")}, {Dest: ip("3"), Path: []netip.Addr{ip("2")}}},
		ip("11"): {{Dest: ip("2")}, {Dest: ip("3")}},
	}
	got := Compute(self, []netip.Addr{ip("10"), ip("11")}, adverts, nil, confirms)
	want := map[netip.Addr]Route{
		ip("10"): {Dest: ip("10")}, ip("11"): {Dest: ip("11")},
		ip("2"): {Dest: ip("2"), Via: ip("10"), Path: []netip.Addr{ip("10")}},
		ip("3"): {Dest: ip("3"), Via: ip("10"), Path: []netip.Addr{ip("10"), ip("2")}},
	}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// without confirmation, 11 would carry 3 (one hop shorter)
	if r := Compute(self, []netip.Addr{ip("10"), ip("11")}, adverts, nil, nil)[ip("3")]; r.Via != ip("11") {
		t.Fatalf("sanity: unconfirmed, 3 goes via %v", r.Via)
	}
}

func TestAllowedIPs(t *testing.T) {
	routes := map[netip.Addr]Route{
		ip("10"): {Dest: ip("10")},
		ip("2"):  {Dest: ip("2"), Via: ip("10"), Path: []netip.Addr{ip("10")}},
		ip("3"):  {Dest: ip("3")},
	}
	want := map[netip.Addr][]netip.Prefix{
		ip("10"): {netip.MustParsePrefix("198.51.100.2/32"), netip.MustParsePrefix("198.51.100.10/32")},
		ip("3"):  {netip.MustParsePrefix("198.51.100.3/32")},
	}
	if diff := cmp.Diff(want, AllowedIPs(routes), cmpAddr, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := Changed(routes, map[netip.Addr]Route{ip("10"): {Dest: ip("10")}, ip("2"): {Dest: ip("2")}}); n != 2 {
		t.Errorf("Changed = %d, want 2 (3 removed, 2 moved)", n)
	}
}
