package netns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"

	"noops/internal/errkind"
	"noops/internal/testenv/need"
)

func TestAppFirewallConfigInvalid(t *testing.T) {
	t.Parallel()
	good := AppFirewallConfig{Table: "noopsapptest", Bridge: "noops0", Subnet: netip.MustParsePrefix("10.88.0.0/16"), HostPorts: []uint16{443}}
	cases := []struct {
		name   string
		change func(*AppFirewallConfig)
		want   string
	}{
		{"table with a space", func(c *AppFirewallConfig) { c.Table = "no ops" }, "table name"},
		{"table too long", func(c *AppFirewallConfig) { c.Table = strings.Repeat("t", 65) }, "table name"},
		{"no bridge", func(c *AppFirewallConfig) { c.Bridge = "" }, "bridge is not set"},
		{"bad bridge", func(c *AppFirewallConfig) { c.Bridge = "a/b" }, "not a valid interface name"},
		{"bridge name too long", func(c *AppFirewallConfig) { c.Bridge = strings.Repeat("b", 16) }, "not a valid interface name"},
		{"no subnet", func(c *AppFirewallConfig) { c.Subnet = netip.Prefix{} }, "subnet is not set"},
		{"subnet with host bits", func(c *AppFirewallConfig) { c.Subnet = netip.MustParsePrefix("10.88.0.1/16") }, "did you mean 10.88.0.0/16"},
		{"mapped subnet", func(c *AppFirewallConfig) { c.Subnet = netip.MustParsePrefix("::ffff:10.88.0.0/112") }, "plain"},
		{"host port 0", func(c *AppFirewallConfig) { c.HostPorts = []uint16{443, 0} }, "port 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.change(&cfg)
			// Refused before anything touches the kernel: no root needed.
			f, err := NewAppFirewall(cfg)
			if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewAppFirewall(%+v) = %v, %v; want an invalid error containing %q", cfg, f, err, tc.want)
			}
		})
	}
}

func TestAppFirewallConfigNormalize(t *testing.T) {
	t.Parallel()
	got, err := AppFirewallConfig{Bridge: "noops0", Subnet: netip.MustParsePrefix("10.88.0.0/16"), HostPorts: []uint16{8443, 443, 8443}}.normalize()
	if err != nil {
		t.Fatalf("normalize: %v", err)
	}
	if got.Table != DefaultAppFirewallTable {
		t.Errorf("Table = %q, want %q", got.Table, DefaultAppFirewallTable)
	}
	if want := []uint16{443, 8443}; !slices.Equal(got.HostPorts, want) {
		t.Errorf("HostPorts = %v, want %v", got.HostPorts, want)
	}
}

// TestAllowInvalid: Allow refuses bad arguments before it touches the
// kernel (so this firewall, never applied, needs no root).
func TestAllowInvalid(t *testing.T) {
	t.Parallel()
	cfg, err := AppFirewallConfig{Bridge: "noops0", Subnet: netip.MustParsePrefix("10.88.0.0/16")}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	f := &AppFirewall{cfg: cfg, sandboxes: map[string]sandboxEgress{}}
	addr := netip.MustParseAddr("10.88.0.5")
	ok := []Egress{{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Port: 443}}
	cases := []struct {
		name   string
		id     string
		addr   netip.Addr
		egress []Egress
		want   string
	}{
		{"bad id", "Web_1", addr, ok, "sandbox id"},
		{"no address", "web", netip.Addr{}, ok, "not a plain"},
		{"address with a zone", "web", netip.MustParseAddr("fe80::1%eth0"), ok, "not a plain"},
		{"mapped address", "web", netip.MustParseAddr("::ffff:10.88.0.5"), ok, "not a plain"},
		{"address outside the subnet", "web", netip.MustParseAddr("10.89.0.5"), ok, "not in the app network"},
		{"invalid prefix", "web", addr, []Egress{{Port: 443}}, "not a valid prefix"},
		{"prefix with host bits", "web", addr, []Egress{{Prefix: netip.MustParsePrefix("10.0.0.1/8"), Port: 443}}, "host bits"},
		{"port 0", "web", addr, []Egress{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}, "has no port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := f.Allow(tc.id, tc.addr, tc.egress); !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Allow(%q, %v, %v) = %v, want an invalid error containing %q", tc.id, tc.addr, tc.egress, err, tc.want)
			}
		})
	}
	if err := f.Forget("Web_1"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Forget(%q) = %v, want an invalid error", "Web_1", err)
	}

	// What is valid is sorted, without duplicates or the other family.
	e := func(s string, port uint16) Egress { return Egress{Prefix: netip.MustParsePrefix(s), Port: port} }
	got, err := f.sandboxEgress("web", addr, []Egress{e("203.0.113.7/32", 443), e("2001:db8::/32", 443), e("10.0.0.0/8", 5432), e("203.0.113.7/32", 443), e("10.0.0.0/8", 80)})
	if err != nil {
		t.Fatalf("sandboxEgress: %v", err)
	}
	if want := []Egress{e("10.0.0.0/8", 80), e("10.0.0.0/8", 5432), e("203.0.113.7/32", 443)}; !slices.Equal(got.egress, want) {
		t.Errorf("sandboxEgress kept %v, want %v", got.egress, want)
	}
}

func TestBridgeNetfilter(t *testing.T) {
	t.Parallel()
	const (
		v4, v6   = "proc/sys/net/bridge/bridge-nf-call-iptables", "proc/sys/net/bridge/bridge-nf-call-ip6tables"
		br4, br6 = "sys/class/net/noops0/bridge/nf_call_iptables", "sys/class/net/noops0/bridge/nf_call_ip6tables"
		on, off  = "1\n", "0\n"
	)
	cases := []struct {
		name  string
		files map[string]string
		want  []string // what the error names; none: no error
	}{
		{"both sysctls on", map[string]string{v4: on, v6: on}, nil},
		{"bridge options on", map[string]string{v4: off, v6: off, br4: on, br6: on}, nil},
		{"mixed", map[string]string{v4: on, v6: off, br6: on}, nil},
		{"IPv6 off", map[string]string{v4: on, v6: off, br6: off}, []string{"bridge-nf-call-ip6tables"}},
		{"both off", map[string]string{v4: off, v6: off}, []string{"bridge-nf-call-iptables and", "ip6tables"}},
		{"br_netfilter not loaded", map[string]string{}, []string{"bridge-nf-call-iptables and", "ip6tables"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{}
			for p, s := range tc.files {
				fsys[p] = &fstest.MapFile{Data: []byte(s)}
			}
			err := bridgeNetfilter(fsys, "noops0")
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("bridgeNetfilter(%v) = %v, want nil", tc.files, err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("bridgeNetfilter(%v) = %v, want an error containing %q", tc.files, err, w)
				}
			}
		})
	}
}

// outcome is what a connection attempt should come to.
type outcome int

const (
	open     outcome = iota // connects
	rejected                // fails at once: no route to host (EHOSTUNREACH), or EACCES over IPv6
	blocked                 // fails, rejected or silently dropped (a timeout)
)

func (o outcome) String() string { return [...]string{"a connection", "rejected", "no connection"}[o] }

// blockedTimeout is how long a connection that should not get through is
// given: frames dropped on the bridge time out.
const blockedTimeout = 2 * time.Second

// dialFrom connects over TCP from the namespace at path ("" for the host)
// to addr and reports how it went.
func dialFrom(t *testing.T, path, addr string, timeout time.Duration) error {
	t.Helper()
	dial := func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err == nil {
			c.Close()
		}
		return err
	}
	if path == "" {
		return dial()
	}
	var err error
	inNS(t, path, func() { err = dial() })
	return err
}

// inNSRun runs a command inside the namespace at path: a child started
// from the thread inNS moved there inherits its namespace.
func inNSRun(t *testing.T, path string, name string, args ...string) {
	t.Helper()
	var out []byte
	var err error
	inNS(t, path, func() { out, err = exec.Command(name, args...).CombinedOutput() })
	if err != nil {
		t.Fatalf("%s %s in %s: %v: %s", name, strings.Join(args, " "), path, err, out)
	}
}

// listenIn listens on TCP in the namespace at path on addr and accepts
// until the test ends.
func listenIn(t *testing.T, path, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, path, func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, path, err)
	}
	serveTCP(t, ln)
	return ln
}

// linkLocal returns the IPv6 link-local address and the index of eth0 in
// the namespace at path, waiting for the address to appear.
func linkLocal(t *testing.T, path string) (netip.Addr, int, bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ifc *net.Interface
		var addrs []net.Addr
		var err error
		inNS(t, path, func() {
			if ifc, err = net.InterfaceByName(ifName); err == nil {
				addrs, err = ifc.Addrs()
			}
		})
		if err != nil {
			t.Fatalf("reading %s in %s: %v", ifName, path, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP.IsLinkLocalUnicast() {
				ip, _ := netip.AddrFromSlice(n.IP)
				return ip, ifc.Index, true
			}
		}
	}
	return netip.Addr{}, 0, false
}

// counted sums the packets counted by the rules of table (family)
// whose comment is comment ("" for every rule).
func counted(t *testing.T, family nftables.TableFamily, table, comment string) uint64 {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatalf("opening nftables: %v", err)
	}
	chains, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		t.Fatalf("listing nftables chains: %v", err)
	}
	var n uint64
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatalf("listing the rules of chain %s: %v", ch.Name, err)
		}
		for _, r := range rules {
			if c, _ := userdata.GetString(r.UserData, userdata.TypeComment); comment != "" && c != comment {
				continue
			}
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					n += ctr.Packets
				}
			}
		}
	}
	return n
}

// TestAppFirewall puts three sandboxes on an app network and one on
// another network standing for the outside (reached through the host, as
// the internet would be), and checks what the app firewall lets through:
// without it every target inside this machine is reachable (so the checks
// can fail); with it sandboxes reach neither one another (bridged or
// routed through the host) nor the host except on its listed ports, while
// the host reaches them; egress opens to what Allow lists and closes with
// Forget; Close removes the tables. It contacts nothing outside this
// machine.
func TestAppFirewall(t *testing.T) {
	t.Parallel()
	need.Root(t)
	need.Program(t, "ip")
	ctx := context.Background()
	app := newTestNet(t, 24, "")
	outside := newTestNet(t, 24, "")
	for outside.Subnet().Overlaps(app.Subnet()) {
		outside = newTestNet(t, 24, "")
	}
	att := map[string]Attachment{}
	for _, s := range []struct {
		net testNet
		id  string
	}{{app, "fw-a"}, {app, "fw-b"}, {app, "fw-c"}, {outside, "fw-out"}} {
		a, err := s.net.Setup(ctx, s.id)
		if err != nil {
			t.Fatalf("Setup %s: %v", s.id, err)
		}
		att[s.id] = a
	}
	a, b, c, out := att["fw-a"], att["fw-b"], att["fw-c"], att["fw-out"]
	// The app network is made without IPMasq, so that what masquerades
	// is the firewall: A and B get a default route by hand. C reaches B
	// through the host, as a sandbox that forges frames to the gateway
	// could.
	for _, s := range []Attachment{a, b} {
		inNSRun(t, s.NetNS, "ip", "route", "add", "default", "via", s.Gateway.String())
	}
	inNSRun(t, c.NetNS, "ip", "route", "add", b.IP.String()+"/32", "via", c.Gateway.String())
	// The host tells C, by ICMP redirect, that B is on its link; C must
	// not take the hint, or its later attempts would be bridged.
	inNS(t, c.NetNS, func() {
		for _, dev := range []string{"all", ifName} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+dev+"/accept_redirects", []byte("0"), 0); err != nil {
				t.Errorf("turning off accept_redirects of %s in fw-c: %v", dev, err)
			}
		}
	})

	inB := listenIn(t, b.NetNS, ":0") // every address of B, IPv4 and IPv6
	bPort := uint16(inB.Addr().(*net.TCPAddr).Port)
	inA := listenIn(t, a.NetNS, netip.AddrPortFrom(a.IP, 0).String())
	outAllowed := listenIn(t, out.NetNS, netip.AddrPortFrom(out.IP, 0).String())
	outOther := listenIn(t, out.NetNS, netip.AddrPortFrom(out.IP, 0).String())
	hostListed := listenTCP(t, netip.AddrPortFrom(a.Gateway, 0).String())
	hostOther := listenTCP(t, netip.AddrPortFrom(a.Gateway, 0).String())
	addrOf := func(ln net.Listener) netip.AddrPort { return netip.MustParseAddrPort(ln.Addr().String()) }
	toOut := addrOf(outAllowed)

	// A rule that must count the attempt of a target: which rule stops it.
	type rule struct {
		family  nftables.TableFamily
		comment string
	}
	type target struct {
		name   string
		from   string // namespace path; "" is the host
		addr   string
		before bool               // reachable without the firewall (false: needs its masquerading)
		want   map[string]outcome // by phase
		by     rule               // the rule that stops it (for blocked targets)
	}
	const (
		applied   = "with the firewall"
		allowed   = "after Allow"
		forgotten = "after Forget"
	)
	all := func(o outcome) map[string]outcome { return map[string]outcome{applied: o, allowed: o, forgotten: o} }
	bV4 := netip.AddrPortFrom(b.IP, bPort).String()
	bridgeV4 := rule{nftables.TableFamilyBridge, "sandbox to sandbox over IPv4"}
	bridgeV6 := rule{nftables.TableFamilyBridge, "sandbox to sandbox over IPv6"}
	targets := []target{
		{name: "host to A", addr: inA.Addr().String(), before: true, want: all(open)},
		{name: "host to B", addr: bV4, before: true, want: all(open)},
		{name: "A to B", from: a.NetNS, addr: bV4, before: true, want: all(blocked), by: bridgeV4},
		// Rejected, but the ICMP error may not come: the host also sends
		// C a redirect, which resets the rate limit of ICMP errors to C.
		{name: "C to B through the host", from: c.NetNS, addr: bV4, before: true, want: all(blocked), by: rule{nftables.TableFamilyINet, "to another sandbox"}},
		{name: "A to a listed host port", from: a.NetNS, addr: hostListed.Addr().String(), before: true, want: all(open)},
		{name: "A to another host port", from: a.NetNS, addr: hostOther.Addr().String(), before: true, want: all(rejected)},
		{name: "A to the outside", from: a.NetNS, addr: toOut.String(),
			want: map[string]outcome{applied: rejected, allowed: open, forgotten: rejected}},
		{name: "A to another port outside", from: a.NetNS, addr: outOther.Addr().String(), want: all(rejected)},
		{name: "B to the outside", from: b.NetNS, addr: toOut.String(), want: all(rejected)},
	}
	if ll, _, ok := linkLocal(t, b.NetNS); ok {
		_, aIndex, _ := linkLocal(t, a.NetNS)
		targets = append(targets, target{name: "A to B over IPv6 link-local", from: a.NetNS,
			addr: netip.AddrPortFrom(ll.WithZone(strconv.Itoa(aIndex)), bPort).String(), before: true, want: all(blocked), by: bridgeV6})
	} else {
		t.Logf("sandbox has no IPv6 link-local address (IPv6 off?): not checking IPv6")
	}

	// Without the firewall (a new link-local address may take a moment to
	// pass duplicate address detection).
	for _, tg := range targets {
		if !tg.before {
			continue
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := dialFrom(t, tg.from, tg.addr, 5*time.Second)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("without the firewall, %s (%s): %v, want a connection", tg.name, tg.addr, err)
			}
		}
	}

	table := fmt.Sprintf("noopsapptest%06d", rand.IntN(1_000_000))
	cfg := AppFirewallConfig{Table: table, Bridge: app.Bridge(), Subnet: app.Subnet(), HostPorts: []uint16{addrOf(hostListed).Port(), 443}}
	f, err := NewAppFirewall(cfg)
	if err != nil {
		t.Fatalf("NewAppFirewall: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("cleanup: Close: %v", err)
		}
	})
	if !f.byName {
		t.Logf("the kernel lacks nft_meta_bridge: the bridge table matches subnet %s", app.Subnet())
	}

	if !f.byName {
		// No bridge names: IPv4 is dropped by address, IPv6 rejected in
		// the inet table, which br_netfilter hands bridged frames to.
		for i := range targets {
			switch targets[i].by {
			case bridgeV4:
				targets[i].by = rule{nftables.TableFamilyBridge, "from the app subnet"}
			case bridgeV6:
				targets[i].by = rule{nftables.TableFamilyINet, "to another sandbox"}
			}
		}
	}
	// One at a time, so that a rule's counter counts one target.
	check := func(phase string) {
		t.Helper()
		for _, tg := range targets {
			want := tg.want[phase]
			timeout := 10 * time.Second // a reject may need a retransmission
			if want == blocked {
				timeout = blockedTimeout
			}
			stopped := counted(t, tg.by.family, table, tg.by.comment)
			err := dialFrom(t, tg.from, tg.addr, timeout)
			switch {
			case want == open && err != nil:
				t.Errorf("%s, %s (%s): %v, want a connection", phase, tg.name, tg.addr, err)
			case want == rejected && !errors.Is(err, syscall.EHOSTUNREACH) && !errors.Is(err, syscall.EACCES):
				t.Errorf("%s, %s (%s): %v, want rejected (administratively prohibited)", phase, tg.name, tg.addr, err)
			case want == blocked && err == nil:
				t.Errorf("%s, %s (%s): connected, want no connection", phase, tg.name, tg.addr)
			}
			// Stopped by the rule meant to (A to B on the bridge, say,
			// not only by br_netfilter handing it to the inet table).
			if tg.by.comment != "" && counted(t, tg.by.family, table, tg.by.comment) <= stopped {
				t.Errorf("%s, %s: rule %q of the %s table counted nothing", phase, tg.name, tg.by.comment, familyName(tg.by.family))
			}
		}
	}

	wantBridge, wantINet := wantAppRuleset(f, nil)
	if got := listTable(t, nftables.TableFamilyBridge, table); got != wantBridge {
		t.Errorf("bridge table after NewAppFirewall:\n%s\nwant:\n%s", got, wantBridge)
	}
	if got := listTable(t, nftables.TableFamilyINet, table); got != wantINet {
		t.Errorf("inet table after NewAppFirewall:\n%s\nwant:\n%s", got, wantINet)
	}
	check(applied)

	// A may reach one port outside; C is allowed the whole app subnet on
	// B's port, which must not open B; B is allowed nothing.
	aEgress := []Egress{{Prefix: netip.PrefixFrom(toOut.Addr(), 32), Port: toOut.Port()}}
	if err := f.Allow("fw-a", a.IP, aEgress); err != nil {
		t.Fatalf("Allow fw-a: %v", err)
	}
	cEgress := []Egress{{Prefix: app.Subnet(), Port: bPort}}
	if err := f.Allow("fw-c", c.IP, cEgress); err != nil {
		t.Fatalf("Allow fw-c: %v", err)
	}
	if err := f.Allow("fw-b", b.IP, nil); err != nil {
		t.Fatalf("Allow fw-b: %v", err)
	}
	sandboxes := map[string]sandboxEgress{"fw-a": {a.IP, aEgress}, "fw-b": {b.IP, nil}, "fw-c": {c.IP, cEgress}}
	wantBridge, wantINet = wantAppRuleset(f, sandboxes)
	if got := listTable(t, nftables.TableFamilyINet, table); got != wantINet {
		t.Errorf("inet table after Allow:\n%s\nwant:\n%s", got, wantINet)
	}
	// A failed Allow changes nothing.
	if err := f.Allow("fw-a", a.IP, []Egress{{Prefix: netip.MustParsePrefix("10.0.0.1/8"), Port: 1}}); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Allow with a bad prefix = %v, want an invalid error", err)
	}
	if got := listTable(t, nftables.TableFamilyINet, table); got != wantINet {
		t.Errorf("inet table after a failed Allow:\n%s\nwant it unchanged:\n%s", got, wantINet)
	}
	check(allowed)

	if err := f.Forget("fw-a"); err != nil {
		t.Fatalf("Forget fw-a: %v", err)
	}
	if err := f.Forget("fw-never"); err != nil {
		t.Errorf("Forget of an unknown id: %v, want nil", err)
	}
	delete(sandboxes, "fw-a")
	wantBridge, wantINet = wantAppRuleset(f, sandboxes)
	if got := listTable(t, nftables.TableFamilyINet, table); got != wantINet {
		t.Errorf("inet table after Forget:\n%s\nwant:\n%s", got, wantINet)
	}
	if got := listTable(t, nftables.TableFamilyBridge, table); got != wantBridge {
		t.Errorf("bridge table after Forget:\n%s\nwant:\n%s", got, wantBridge)
	}
	check(forgotten)

	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertNoTables(t, table)
	if err := f.Allow("fw-a", a.IP, aEgress); !errkind.Is(err, errkind.Conflict) {
		t.Errorf("Allow after Close = %v, want a conflict error", err)
	}
	if err := f.Forget("fw-b"); !errkind.Is(err, errkind.Conflict) {
		t.Errorf("Forget after Close = %v, want a conflict error", err)
	}
	// Everything inside the machine is reachable again.
	for _, tg := range targets {
		if tg.before {
			if err := dialFrom(t, tg.from, tg.addr, 5*time.Second); err != nil {
				t.Errorf("after Close, %s (%s): %v, want a connection", tg.name, tg.addr, err)
			}
		}
	}
}

// TestAppFirewallConcurrent: concurrent Allows and Forgets all land, and
// an address given to a new id leaves the old one's allow-list behind. The
// bridge need not exist: it is matched by name.
func TestAppFirewallConcurrent(t *testing.T) {
	t.Parallel()
	need.Root(t)
	table := fmt.Sprintf("noopsapptest%06d", rand.IntN(1_000_000))
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + rand.IntN(25)), byte(rand.IntN(256)), 0}), 24)
	f, err := NewAppFirewall(AppFirewallConfig{Table: table, Bridge: fmt.Sprintf("nn%06d", rand.IntN(1_000_000)), Subnet: subnet})
	if err != nil {
		t.Fatalf("NewAppFirewall: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	egress := []Egress{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Port: 443}}
	want := map[string]sandboxEgress{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 16 {
		id := fmt.Sprintf("sb-%02d", i)
		addr := subnet.Addr().As4()
		addr[3] = byte(10 + i)
		ip := netip.AddrFrom4(addr)
		if i%4 != 3 {
			mu.Lock()
			want[id] = sandboxEgress{ip, egress}
			mu.Unlock()
		}
		wg.Go(func() {
			if err := f.Allow(id, ip, egress); err != nil {
				t.Errorf("Allow(%s): %v", id, err)
			}
			if i%4 == 3 {
				if err := f.Forget(id); err != nil {
					t.Errorf("Forget(%s): %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	// sb-00's address goes to a new sandbox.
	if err := f.Allow("sb-new", want["sb-00"].addr, nil); err != nil {
		t.Fatalf("Allow(sb-new): %v", err)
	}
	want["sb-new"] = sandboxEgress{addr: want["sb-00"].addr}
	delete(want, "sb-00")
	_, wantINet := wantAppRuleset(f, want)
	if got := listTable(t, nftables.TableFamilyINet, table); got != wantINet {
		t.Errorf("inet table:\n%s\nwant:\n%s", got, wantINet)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertNoTables(t, table)
	if err := f.Close(); err != nil {
		t.Errorf("Close again: %v, want nil", err)
	}
}

func familyName(f nftables.TableFamily) string {
	if f == nftables.TableFamilyBridge {
		return "bridge"
	}
	return "inet"
}

// assertNoTables checks with ListTables that no table of any family is
// called table.
func assertNoTables(t *testing.T, table string) {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatalf("opening nftables: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("listing nftables tables: %v", err)
	}
	for _, tb := range tables {
		if tb.Name == table {
			t.Errorf("after Close, table %s of family %d is still there", table, tb.Family)
		}
	}
}

// wantAppRuleset is what listTable shows for f's bridge and inet tables
// with sandboxes allowed.
func wantAppRuleset(f *AppFirewall, sandboxes map[string]sandboxEgress) (bridge, inet string) {
	chain := func(name string, hook *nftables.ChainHook, prio int) string {
		return fmt.Sprintf("chain %s hook %d priority %d policy 1", name, *hook, prio)
	}
	br := []string{chain("forward", nftables.ChainHookForward, -200)}
	if f.byName {
		br = append(br, "  sandbox to sandbox over IPv4", "  sandbox to sandbox over IPv6")
	} else {
		br = append(br, "  from the app subnet", "  to the app subnet")
	}
	in := []string{
		chain("forward", nftables.ChainHookForward, -1), "  from the app bridge",
		chain("input", nftables.ChainHookInput, -1), "  from the app bridge",
		chain("postrouting", nftables.ChainHookPostrouting, 100), "  egress of the app subnet",
		"chain app-forward", "  to another sandbox", "  replies",
	}
	ids := make([]string, 0, len(sandboxes))
	for id := range sandboxes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, e := range sandboxes[id].egress {
			in = append(in, "  sandbox "+id+" to "+e.String())
		}
	}
	in = append(in, "  the rest", "chain app-input", "  replies")
	for _, p := range f.cfg.HostPorts {
		in = append(in, "  host port "+strconv.Itoa(int(p)))
	}
	in = append(in, "  IPv6 neighbour discovery", "  the rest of the host")
	return strings.Join(br, "\n"), strings.Join(in, "\n")
}
