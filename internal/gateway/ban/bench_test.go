package ban

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkBanned asks for a mix of banned and free addresses against a
// list of 10,000 single-address bans and 16 wider prefixes.
func BenchmarkBanned(b *testing.B) {
	l := New(Config{})
	for i := range 10_000 {
		l.BanFor(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Flood, "", time.Hour)
	}
	for i := range 16 {
		if _, err := l.Add(b.Context(), netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i), 0}), 24), time.Hour, "", "ana"); err != nil {
			b.Fatal(err)
		}
	}
	addrs := make([]netip.Addr, 256)
	for i := range addrs {
		switch i % 4 {
		case 0:
			addrs[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) // banned
		case 1:
			addrs[i] = netip.AddrFrom4([4]byte{172, 16, byte(i % 16), 1}) // in a banned prefix
		case 2:
			addrs[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}) // free
		default:
			addrs[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) // free
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Banned(addrs[i&255])
			i++
		}
	})
}

// BenchmarkBanFor is the cost of a new ban with 10,000 in force, as in a
// flood from many addresses: it must not grow with the list.
func BenchmarkBanFor(b *testing.B) {
	l := New(Config{})
	for i := range 10_000 {
		l.BanFor(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Flood, "", time.Hour)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		l.BanFor(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}), Flood, "", time.Hour)
	}
}
