package netns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"noops/internal/errkind"
)

func TestResolveEgress(t *testing.T) {
	t.Parallel()
	dns := fakeDNS(map[string][]netip.Addr{
		"api.test":    {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
		"db.test":     {netip.MustParseAddr("192.0.2.20")},
		"mapped.test": {netip.MustParseAddr("::ffff:192.0.2.30")},
	})
	eg := func(prefix string, port uint16) Egress {
		return Egress{Prefix: netip.MustParsePrefix(prefix), Port: port}
	}
	cases := []struct {
		name    string
		entries []string
		want    []Egress
	}{
		{"none", nil, nil},
		{"address", []string{"203.0.113.7:443"}, []Egress{eg("203.0.113.7/32", 443)}},
		{"IPv6 address", []string{"[2001:db8::7]:443"}, []Egress{eg("2001:db8::7/128", 443)}},
		{"mapped address", []string{"[::ffff:203.0.113.7]:443"}, []Egress{eg("203.0.113.7/32", 443)}},
		{"prefix", []string{"10.0.0.0/8:5432"}, []Egress{eg("10.0.0.0/8", 5432)}},
		{"IPv6 prefix", []string{"[2001:db8::/32]:443"}, []Egress{eg("2001:db8::/32", 443)}},
		{"name with both families", []string{"api.test:443"}, []Egress{eg("192.0.2.10/32", 443), eg("2001:db8::10/128", 443)}},
		{"name, case and trailing dot", []string{"DB.Test.:5432"}, []Egress{eg("192.0.2.20/32", 5432)}},
		{"name resolving to a mapped address", []string{"mapped.test:80"}, []Egress{eg("192.0.2.30/32", 80)}},
		{"highest port", []string{"203.0.113.7:65535"}, []Egress{eg("203.0.113.7/32", 65535)}},
		{"duplicates dropped, order kept", []string{"db.test:5432", "10.0.0.0/8:5432", "192.0.2.20:5432", "db.test:5433"},
			[]Egress{eg("192.0.2.20/32", 5432), eg("10.0.0.0/8", 5432), eg("192.0.2.20/32", 5433)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ResolveEgress(context.Background(), dns, tc.entries)
			if err != nil {
				t.Fatalf("ResolveEgress(%q): %v", tc.entries, err)
			}
			// The resolver orders a name's addresses as it sees fit.
			if tc.name == "name with both families" {
				slices.SortFunc(got, compareEgress)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ResolveEgress(%q) = %v, want %v", tc.entries, got, tc.want)
			}
		})
	}
}

func TestResolveEgressLocalhost(t *testing.T) {
	t.Parallel()
	got, err := ResolveEgress(context.Background(), nil, []string{"localhost:80"})
	if err != nil {
		t.Fatalf("ResolveEgress(localhost:80): %v", err)
	}
	if want := (Egress{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Port: 80}); !slices.Contains(got, want) {
		t.Errorf("ResolveEgress(localhost:80) = %v, want it to contain %v", got, want)
	}
	for _, e := range got {
		if !e.Prefix.Addr().IsLoopback() || !e.Prefix.IsSingleIP() || e.Port != 80 {
			t.Errorf("ResolveEgress(localhost:80) gave %v, want only loopback addresses on port 80", e)
		}
	}
}

func TestResolveEgressInvalid(t *testing.T) {
	t.Parallel()
	dns := fakeDNS(map[string][]netip.Addr{"api.test": {netip.MustParseAddr("192.0.2.10")}})
	cases := []struct {
		name  string
		entry string
		kind  errkind.Kind
		want  string
	}{
		{"empty", "", errkind.Invalid, "is not host:port"},
		{"no port", "api.test", errkind.Invalid, "is not host:port"},
		{"prefix without a port", "10.0.0.0/8", errkind.Invalid, "is not host:port"},
		{"no host", ":443", errkind.Invalid, "is not host:port"},
		{"IPv6 without brackets", "2001:db8::1:443", errkind.Invalid, "is not host:port"},
		{"port 0", "api.test:0", errkind.Invalid, "not a number from 1 to 65535"},
		{"port too high", "api.test:65536", errkind.Invalid, "not a number from 1 to 65535"},
		{"service name", "api.test:https", errkind.Invalid, "not a number from 1 to 65535"},
		{"negative port", "api.test:-1", errkind.Invalid, "not a number from 1 to 65535"},
		{"prefix with host bits", "10.0.0.1/8:443", errkind.Invalid, "did you mean 10.0.0.0/8"},
		{"prefix too long", "10.0.0.0/33:443", errkind.Invalid, "is not a prefix"},
		{"name with a prefix length", "api.test/8:443", errkind.Invalid, "is not a prefix"},
		{"mapped prefix", "[::ffff:10.0.0.0/104]:443", errkind.Invalid, "plain"},
		{"address with a zone", "[fe80::1%eth0]:443", errkind.Invalid, "has a zone"},
		{"incomplete address", "1.2.3:443", errkind.Invalid, "neither an address nor a host name"},
		{"out-of-range address", "256.1.1.1:443", errkind.Invalid, "neither an address nor a host name"},
		{"space in the name", "api test:443", errkind.Invalid, "neither an address nor a host name"},
		{"unknown name", "missing.test:443", errkind.Invalid, "does not resolve"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			entries := []string{"api.test:443", tc.entry}
			got, err := ResolveEgress(context.Background(), dns, entries)
			if errkind.Of(err) != tc.kind || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "\""+tc.entry+"\"") {
				t.Errorf("ResolveEgress(%q) = %v, %v; want a %v error naming %q and containing %q", entries, got, err, tc.kind, tc.entry, tc.want)
			}
		})
	}
}

// TestResolveEgressResolverFails: a resolver that cannot be reached makes
// the entry with a name unavailable (retrying may work), naming it.
func TestResolveEgressResolverFails(t *testing.T) {
	t.Parallel()
	down := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server in this test")
	}}
	entries := []string{"203.0.113.7:443", "api.test:443"}
	got, err := ResolveEgress(context.Background(), down, entries)
	if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), `"api.test:443"`) {
		t.Errorf("ResolveEgress(%q) with a failing resolver = %v, %v; want an unavailable error naming api.test:443", entries, got, err)
	}
	// Addresses and prefixes need no resolver.
	entries = []string{"203.0.113.7:443", "10.0.0.0/8:5432"}
	if _, err := ResolveEgress(context.Background(), down, entries); err != nil {
		t.Errorf("ResolveEgress(%q) with a failing resolver: %v, want no lookup", entries, err)
	}
}

func TestEgressString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"203.0.113.7:443", "10.0.0.0/8:5432", "[2001:db8::7]:443", "[2001:db8::/32]:443"} {
		got, err := ResolveEgress(context.Background(), nil, []string{s})
		if err != nil || len(got) != 1 {
			t.Fatalf("ResolveEgress(%q) = %v, %v", s, got, err)
		}
		if got[0].String() != s {
			t.Errorf("ResolveEgress(%q)[0].String() = %q, want %q", s, got[0].String(), s)
		}
	}
}

// FuzzResolveEgress: any entry gives rules a firewall accepts, or an
// invalid error (names go to a resolver that knows one).
func FuzzResolveEgress(f *testing.F) {
	for _, s := range []string{"api.test:443", "203.0.113.7:443", "10.0.0.0/8:5432", "[2001:db8::/32]:443", "[fe80::1%eth0]:1", "1.2.3:4", ":0", "a:b:c"} {
		f.Add(s)
	}
	dns := fakeDNS(map[string][]netip.Addr{"api.test": {netip.MustParseAddr("192.0.2.10")}})
	f.Fuzz(func(t *testing.T, entry string) {
		got, err := ResolveEgress(context.Background(), dns, []string{entry})
		if err != nil {
			if !errkind.Is(err, errkind.Invalid) && !errkind.Is(err, errkind.Unavailable) {
				t.Fatalf("ResolveEgress(%q): unclassified error %v", entry, err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("ResolveEgress(%q) = no rules and no error", entry)
		}
		for _, e := range got {
			if err := validPrefix(e.Prefix); err != nil || e.Port == 0 {
				t.Fatalf("ResolveEgress(%q) gave %v: %v", entry, e, err)
			}
		}
	})
}

// fakeDNS is a resolver that answers from names (A and AAAA records), and
// with "no such name" for any other, over an in-memory connection.
func fakeDNS(names map[string][]netip.Addr) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveDNS(server, names)
		return client, nil
	}}
}

// serveDNS answers DNS queries on c, framed as over TCP (c is no
// PacketConn), until c is closed.
func serveDNS(c net.Conn, names map[string][]netip.Addr) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		resp := dnsAnswer(q, names)
		if resp == nil {
			return
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...)); err != nil {
			return
		}
	}
}

// dnsAnswer is the response to query q (RFC 1035), or nil if q is
// malformed.
func dnsAnswer(q []byte, names map[string][]netip.Addr) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		n := int(q[i])
		if i+1+n > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+n]))
		i += 1 + n
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	addrs, known := names[strings.ToLower(strings.Join(labels, "."))]
	var answers []byte
	count := 0
	for _, a := range addrs {
		if !(qtype == 1 && a.Is4() || qtype == 28 && !a.Is4()) { // A, AAAA
			continue
		}
		answers = append(answers, 0xc0, 12) // the name of the question
		answers = binary.BigEndian.AppendUint16(answers, qtype)
		answers = binary.BigEndian.AppendUint16(answers, 1) // IN
		answers = binary.BigEndian.AppendUint32(answers, 60)
		answers = binary.BigEndian.AppendUint16(answers, uint16(len(a.AsSlice())))
		answers = append(answers, a.AsSlice()...)
		count++
	}
	flags := uint16(0x8180) // a response; recursion desired and available
	if !known {
		flags |= 3 // no such name
	}
	h := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(q)) // the query's id
	h = binary.BigEndian.AppendUint16(h, flags)
	h = binary.BigEndian.AppendUint16(h, 1)
	h = binary.BigEndian.AppendUint16(h, uint16(count))
	h = append(h, 0, 0, 0, 0)
	h = append(h, q[12:i+5]...) // the question
	return append(h, answers...)
}
