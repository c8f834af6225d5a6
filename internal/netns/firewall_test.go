package netns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"

	"noops/internal/errkind"
	"noops/internal/testenv/need"
)

func TestFirewallConfigInvalid(t *testing.T) {
	t.Parallel()
	good := FirewallConfig{
		Table:     "noopstest",
		Bridge:    "noopsb0",
		Build:     netip.MustParsePrefix("10.89.0.0/16"),
		Protected: []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16")},
		Allow:     []netip.AddrPort{netip.MustParseAddrPort("192.168.1.1:53")},
	}
	cases := []struct {
		name   string
		change func(*FirewallConfig)
		want   string
	}{
		{"table with a space", func(c *FirewallConfig) { c.Table = "no ops" }, "table name"},
		{"table too long", func(c *FirewallConfig) { c.Table = strings.Repeat("t", 65) }, "table name"},
		{"table starting with a digit", func(c *FirewallConfig) { c.Table = "1noops" }, "table name"},
		{"no bridge", func(c *FirewallConfig) { c.Bridge = "" }, "bridge is not set"},
		{"bad bridge", func(c *FirewallConfig) { c.Bridge = "a/b" }, "not a valid interface name"},
		{"no build subnet", func(c *FirewallConfig) { c.Build = netip.Prefix{} }, "subnet is not set"},
		{"build subnet with host bits", func(c *FirewallConfig) { c.Build = netip.MustParsePrefix("10.89.0.1/16") }, "did you mean 10.89.0.0/16"},
		{"invalid protected prefix", func(c *FirewallConfig) { c.Protected = []netip.Prefix{{}} }, "not a valid prefix"},
		{"protected prefix with host bits", func(c *FirewallConfig) { c.Protected = []netip.Prefix{netip.MustParsePrefix("10.88.1.0/16")} }, "host bits"},
		{"mapped protected prefix", func(c *FirewallConfig) { c.Protected = []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")} }, "plain"},
		{"allowed port 0", func(c *FirewallConfig) { c.Allow = []netip.AddrPort{netip.MustParseAddrPort("192.168.1.1:0")} }, "has no port"},
		{"allowed address with a zone", func(c *FirewallConfig) { c.Allow = []netip.AddrPort{netip.MustParseAddrPort("[fe80::1%eth0]:53")} }, "plain"},
		{"invalid allowed address", func(c *FirewallConfig) { c.Allow = []netip.AddrPort{{}} }, "plain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.change(&cfg)
			// Invalid input is refused before anything touches the kernel,
			// so this runs without root too.
			err := ApplyFirewall(cfg)
			if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ApplyFirewall(%+v) = %v, want an invalid error containing %q", cfg, err, tc.want)
			}
		})
	}
	if err := RemoveFirewall("no ops"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("RemoveFirewall(%q) = %v, want an invalid error", "no ops", err)
	}
}

func TestFirewallConfigNormalize(t *testing.T) {
	t.Parallel()
	app := netip.MustParsePrefix("10.88.0.0/16")
	dns := netip.MustParseAddrPort("192.168.1.1:53")
	got, err := FirewallConfig{
		Bridge:    "noopsb0",
		Build:     netip.MustParsePrefix("10.89.0.0/16"),
		Protected: []netip.Prefix{app, netip.MustParsePrefix("10.0.0.0/8"), app, netip.MustParsePrefix("2001:db8::/32")},
		Allow:     []netip.AddrPort{dns, netip.MustParseAddrPort("[2001:db8::53]:53"), dns},
	}.normalize()
	if err != nil {
		t.Fatalf("normalize: %v", err)
	}
	if got.Table != DefaultFirewallTable {
		t.Errorf("Table = %q, want %q", got.Table, DefaultFirewallTable)
	}
	wantProtected := []string{
		"10.0.0.0/8", "10.88.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16",
		"2001:db8::/32", "fc00::/7", "fe80::/10",
	}
	if s := fmt.Sprint(got.Protected); s != fmt.Sprint(wantProtected) {
		t.Errorf("Protected = %s, want %s", s, wantProtected)
	}
	if s, want := fmt.Sprint(got.Allow), "[192.168.1.1:53 [2001:db8::53]:53]"; s != want {
		t.Errorf("Allow = %s, want %s", s, want)
	}
}

// TestFirewall builds an app network and a build network, as the platform
// does, and checks from inside their sandboxes what the build firewall lets
// through: before it is applied every target is reachable (so the checks
// can fail), with it a build sandbox reaches only the allowed address while
// the app sandboxes are unaffected, and after RemoveFirewall everything is
// reachable again. It contacts nothing outside this machine.
func TestFirewall(t *testing.T) {
	t.Parallel()
	need.Root(t)
	ctx := context.Background()
	app := newTestNet(t, 24, "")
	build := newTestNet(t, 24, "", func(c *Config) { c.IPMasq = true })
	appAtt, err := app.Setup(ctx, "app-1")
	if err != nil {
		t.Fatalf("Setup app-1: %v", err)
	}
	app2Att, err := app.Setup(ctx, "app-2")
	if err != nil {
		t.Fatalf("Setup app-2: %v", err)
	}
	buildAtt, err := build.Setup(ctx, "build-1")
	if err != nil {
		t.Fatalf("Setup build-1: %v", err)
	}

	var inApp net.Listener
	inNS(t, appAtt.NetNS, func() { inApp, err = net.Listen("tcp", netip.AddrPortFrom(appAtt.IP, 0).String()) })
	if err != nil {
		t.Fatalf("listening in app-1: %v", err)
	}
	serveTCP(t, inApp)
	onBuildGW := listenTCP(t, netip.AddrPortFrom(buildAtt.Gateway, 0).String())
	onAppGW := listenTCP(t, netip.AddrPortFrom(appAtt.Gateway, 0).String())
	allowedTCP, allowedUDP := listenBoth(t, buildAtt.Gateway)
	blockedUDP := listenUDP(t, netip.AddrPortFrom(buildAtt.Gateway, 0).String())

	type target struct {
		name    string
		from    string // namespace path
		network string // tcp or udp
		addr    string
		blocked syscall.Errno // with the firewall; 0: reachable
	}
	targets := []target{
		{"build to a sandbox on the app network", buildAtt.NetNS, "tcp", inApp.Addr().String(), syscall.EHOSTUNREACH},
		{"build to the host on its own gateway", buildAtt.NetNS, "tcp", onBuildGW.Addr().String(), syscall.EHOSTUNREACH},
		{"build to the host on the app gateway", buildAtt.NetNS, "tcp", onAppGW.Addr().String(), syscall.EHOSTUNREACH},
		{"build to the host over UDP", buildAtt.NetNS, "udp", blockedUDP.LocalAddr().String(), syscall.EHOSTUNREACH},
		{"build to an allowed address over TCP", buildAtt.NetNS, "tcp", allowedTCP.Addr().String(), 0},
		{"build to an allowed address over UDP", buildAtt.NetNS, "udp", allowedUDP.LocalAddr().String(), 0},
		{"app to the host on its gateway", appAtt.NetNS, "tcp", onAppGW.Addr().String(), 0},
		{"app to another app sandbox", app2Att.NetNS, "tcp", inApp.Addr().String(), 0},
	}
	// The host's IPv6 link-local address on the build bridge: not in the
	// build subnet, and as good as any to reach what listens on [::].
	if ll, ok := bridgeLinkLocal(t, build.Bridge()); ok {
		// A new address cannot be bound until it passes duplicate address
		// detection.
		var onLL net.Listener
		addr := "[" + ll.WithZone(build.Bridge()).String() + "]:0"
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if onLL, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("listening on %s: %v", addr, err)
		}
		serveTCP(t, onLL)
		// The zone by index: the net package caches interface names as
		// the host's namespace has them.
		var eth0 *net.Interface
		inNS(t, buildAtt.NetNS, func() { eth0, err = net.InterfaceByName(ifName) })
		if err != nil {
			t.Fatalf("finding %s in build-1: %v", ifName, err)
		}
		port := onLL.Addr().(*net.TCPAddr).Port
		targets = append(targets, target{"build to the host over IPv6 link-local", buildAtt.NetNS, "tcp",
			netip.AddrPortFrom(ll.WithZone(strconv.Itoa(eth0.Index)), uint16(port)).String(), syscall.EACCES})
	} else {
		t.Logf("bridge %s has no IPv6 link-local address (IPv6 off?): not checking IPv6", build.Bridge())
	}

	// Without the firewall everything is reachable (a new link-local
	// address may take a moment to pass duplicate address detection).
	for _, tg := range targets {
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := exchange(t, tg.from, tg.network, tg.addr)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("without the firewall, %s (%s %s): %v, want a connection", tg.name, tg.network, tg.addr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	table := fmt.Sprintf("noopstest%06d", rand.IntN(1_000_000))
	t.Cleanup(func() {
		if err := RemoveFirewall(table); err != nil {
			t.Errorf("cleanup: RemoveFirewall(%s): %v", table, err)
		}
	})
	allow := netip.MustParseAddrPort(allowedTCP.Addr().String())
	cfg := FirewallConfig{
		Table:     table,
		Bridge:    build.Bridge(),
		Build:     build.Subnet(),
		Protected: []netip.Prefix{app.Subnet()},
		Allow:     []netip.AddrPort{allow},
	}
	check := func(when string) {
		t.Helper()
		for _, tg := range targets {
			err := exchange(t, tg.from, tg.network, tg.addr)
			switch {
			case tg.blocked == 0 && err != nil:
				t.Errorf("%s, %s (%s %s): %v, want a connection", when, tg.name, tg.network, tg.addr, err)
			case tg.blocked != 0 && !errors.Is(err, tg.blocked):
				t.Errorf("%s, %s (%s %s): %v, want %v (administratively prohibited)", when, tg.name, tg.network, tg.addr, err, tg.blocked)
			}
		}
	}

	if err := ApplyFirewall(cfg); err != nil {
		t.Fatalf("ApplyFirewall: %v", err)
	}
	check("with the firewall")
	want := wantRuleset(t, cfg)
	first := listFirewall(t, table)
	if first != want {
		t.Errorf("ruleset after ApplyFirewall:\n%s\nwant:\n%s", first, want)
	}
	for _, s := range []string{"protected " + app.Subnet().String(), "protected 10.0.0.0/8", "allowed " + allow.String()} {
		if !strings.Contains(first, s) {
			t.Errorf("ruleset lacks a rule %q:\n%s", s, first)
		}
	}

	// Re-applying replaces the table rather than adding to it.
	if err := ApplyFirewall(cfg); err != nil {
		t.Fatalf("ApplyFirewall again: %v", err)
	}
	if again := listFirewall(t, table); again != first {
		t.Errorf("ruleset after applying twice:\n%s\nwant it as after once:\n%s", again, first)
	}
	check("with the firewall applied twice")

	if err := RemoveFirewall(table); err != nil {
		t.Fatalf("RemoveFirewall: %v", err)
	}
	if got := listFirewall(t, table); got != "" {
		t.Errorf("after RemoveFirewall the table is still there:\n%s", got)
	}
	if err := RemoveFirewall(table); err != nil {
		t.Errorf("RemoveFirewall of a missing table: %v, want nil", err)
	}
	for _, tg := range targets {
		if err := exchange(t, tg.from, tg.network, tg.addr); err != nil {
			t.Errorf("after RemoveFirewall, %s (%s %s): %v, want a connection", tg.name, tg.network, tg.addr, err)
		}
	}
}

// exchange connects from the namespace at path to addr and, over UDP,
// waits for the echo of a datagram, sending it again every 200ms as a DNS
// client would (the kernel rate-limits the ICMP errors that reject it, so
// one datagram may go unanswered). A rejected connection fails within a
// second or so; a silently dropped one times out after 10s.
func exchange(t *testing.T, path, network, addr string) error {
	t.Helper()
	var err error
	inNS(t, path, func() {
		var c net.Conn
		if c, err = net.DialTimeout(network, addr, 10*time.Second); err != nil {
			return
		}
		defer c.Close()
		if network != "udp" {
			return
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			if _, err = c.Write([]byte("ping")); err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err = c.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) || time.Now().After(deadline) {
				return
			}
		}
	})
	return err
}

// listenTCP listens on addr on the host and accepts until the test ends.
func listenTCP(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	serveTCP(t, ln)
	return ln
}

// serveTCP accepts and closes connections on ln until the test ends.
func serveTCP(t *testing.T, ln net.Listener) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// listenUDP echoes the datagrams sent to addr until the test ends.
func listenUDP(t *testing.T, addr string) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("listening on udp %s: %v", addr, err)
	}
	serveUDP(t, pc)
	return pc
}

func serveUDP(t *testing.T, pc net.PacketConn) {
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			pc.WriteTo(b[:n], from)
		}
	}()
}

// listenBoth listens on the same port of addr over TCP and UDP, as a DNS
// server does.
func listenBoth(t *testing.T, addr netip.Addr) (net.Listener, net.PacketConn) {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			t.Fatalf("listening on %s: %v", addr, err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			ln.Close() // the port is taken over UDP: try another
			continue
		}
		serveTCP(t, ln)
		serveUDP(t, pc)
		return ln, pc
	}
	t.Fatalf("found no port of %s free over both TCP and UDP", addr)
	return nil, nil
}

// bridgeLinkLocal returns the IPv6 link-local address of bridge, waiting
// for it to appear.
func bridgeLinkLocal(t *testing.T, bridge string) (netip.Addr, bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ifc, err := net.InterfaceByName(bridge)
		if err != nil {
			t.Fatalf("finding bridge %s: %v", bridge, err)
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			t.Fatalf("listing addresses of %s: %v", bridge, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP.IsLinkLocalUnicast() {
				ip, _ := netip.AddrFromSlice(n.IP)
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

// listFirewall renders the inet table's chains and rules, one line each:
// a chain with its hook, priority and policy, then a rule's comment. It
// returns "" when there is no such table.
func listFirewall(t *testing.T, table string) string {
	t.Helper()
	return listTable(t, nftables.TableFamilyINet, table)
}

// listTable is listFirewall for a table of any family.
func listTable(t *testing.T, family nftables.TableFamily, table string) string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatalf("opening nftables: %v", err)
	}
	tables, err := c.ListTablesOfFamily(family)
	if err != nil {
		t.Fatalf("listing nftables tables: %v", err)
	}
	var tab *nftables.Table
	for _, tb := range tables {
		if tb.Name == table {
			if tab != nil {
				t.Fatalf("table %s listed twice", table)
			}
			tab = tb
		}
	}
	if tab == nil {
		return ""
	}
	chains, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		t.Fatalf("listing nftables chains: %v", err)
	}
	var lines []string
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		head := "chain " + ch.Name
		if ch.Hooknum != nil {
			head += fmt.Sprintf(" hook %d priority %d policy %d", *ch.Hooknum, *ch.Priority, *ch.Policy)
		}
		lines = append(lines, head)
		rules, err := c.GetRules(tab, ch)
		if err != nil {
			t.Fatalf("listing the rules of chain %s: %v", ch.Name, err)
		}
		for _, r := range rules {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			lines = append(lines, "  "+comment)
		}
	}
	return strings.Join(lines, "\n")
}

// wantRuleset is what listFirewall shows for cfg.
func wantRuleset(t *testing.T, cfg FirewallConfig) string {
	t.Helper()
	cfg, err := cfg.normalize()
	if err != nil {
		t.Fatalf("normalize: %v", err)
	}
	const hooks = " priority -1 policy 1"
	lines := []string{
		fmt.Sprintf("chain forward hook %d", *nftables.ChainHookForward) + hooks,
		"  from the build bridge",
		"  from the build subnet",
		fmt.Sprintf("chain input hook %d", *nftables.ChainHookInput) + hooks,
		"  from the build bridge",
		"  from the build subnet",
	}
	var allowed []string
	for _, a := range cfg.Allow {
		allowed = append(allowed, "  allowed "+a.String(), "  allowed "+a.String())
	}
	lines = append(lines, "chain build-forward", "  replies")
	lines = append(lines, allowed...)
	for _, p := range cfg.Protected {
		lines = append(lines, "  protected "+p.String())
	}
	lines = append(lines, "  the internet", "chain build-input", "  replies")
	lines = append(lines, allowed...)
	lines = append(lines, "  IPv6 neighbour discovery", "  the host")
	return strings.Join(lines, "\n")
}
