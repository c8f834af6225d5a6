package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"noops/internal/errkind"
)

// The app firewall confines the app network, the bridge on which the app
// sandboxes sit: a sandbox reaches no other sandbox, reaches the host only
// on the gateway's ports, and reaches beyond the host only the destinations
// its allow-list names. It is two nftables tables of one name, one of
// family bridge and one of family inet, replaced together in a single
// netlink batch whenever an allow-list changes; in nft's syntax, for
// bridge noops0, subnet 10.88.0.0/16, host ports 443 and 8443, and sandbox
// "web" at 10.88.0.5 allowed 203.0.113.7:443:
//
//	table bridge noops_app {
//		chain forward {
//			type filter hook forward priority filter; policy accept;
//			meta ibrname "noops0" meta obrname "noops0" meta protocol ip counter drop
//			meta ibrname "noops0" meta obrname "noops0" meta protocol ip6 counter drop
//		}
//	}
//	table inet noops_app {
//		chain forward {
//			type filter hook forward priority filter - 1; policy accept;
//			iifname "noops0" jump app-forward
//		}
//		chain input {
//			type filter hook input priority filter - 1; policy accept;
//			iifname "noops0" jump app-input
//		}
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip saddr 10.88.0.0/16 oifname != "noops0" masquerade
//		}
//		chain app-forward {
//			oifname "noops0" counter reject with icmpx admin-prohibited
//			ct state established,related accept
//			ip saddr 10.88.0.5 ip daddr 203.0.113.7 tcp dport 443 accept   # one per sandbox and entry
//			counter reject with icmpx admin-prohibited
//		}
//		chain app-input {
//			ct state established,related accept
//			tcp dport 443 accept                                           # one per host port
//			tcp dport 8443 accept
//			icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
//			counter reject with icmpx admin-prohibited
//		}
//	}
//
// Between sandboxes: two sandboxes on one bridge talk over Ethernet, so
// their frames never pass through the IP stack's forward hook (unless
// br_netfilter hands bridged frames to it, which it need not). The bridge
// family's forward hook sees every frame the bridge passes from one port to
// another, with or without br_netfilter, and drops IPv4 and IPv6 ones. ARP
// passes. Traffic between the host and a sandbox is not forwarded by the
// bridge (the host is the bridge device itself), so the gateway's proxying
// and health checks are untouched. The bridge family cannot reject in its
// forward hook: a sandbox connecting to another times out. The chain runs
// before br_netfilter, so a dropped frame never reaches the inet table.
//
// Matching the bridge by name needs nft_meta_bridge (CONFIG_NFT_BRIDGE_META;
// distributions build it as a module, minimal kernels may lack it). A
// kernel without it refuses the rules, and NewAppFirewall falls back to
// matching the subnet's addresses:
//
//	meta protocol ip ip saddr 10.88.0.0/16 counter drop
//	meta protocol ip ip daddr 10.88.0.0/16 counter drop
//
// which keeps IPv4 between sandboxes off the bridge but not IPv6 (whose
// link-local addresses every sandbox has). For that the fallback relies on
// br_netfilter handing the bridge's frames to the inet forward chain below,
// and NewAppFirewall refuses to fall back unless it does.
//
// Out of the app network: whatever a sandbox sends through the host is
// checked in app-forward. What would leave through the app bridge again is
// another sandbox, routed back by the host or bridged through br_netfilter,
// and is rejected first, so that no allow-list entry (10.0.0.0/8, say)
// opens a sandbox. Then replies pass, and the sandbox's own allow-list; the
// rest is rejected at once ("no route to host", EHOSTUNREACH). Allowed
// connections are masqueraded as the host as they leave, so the far end
// needs no route back to the app subnet. A sandbox that forges another's
// source address gets no reply: the replies go to the other one. A sandbox
// needs a default route to use its allow-list at all (networks made with
// Config.IPMasq have one).
//
// Into the host: app-input, as the build firewall's input chain, accepts
// replies, the listed TCP ports and IPv6 neighbour discovery, and rejects
// the rest, on every address of the host.
//
// The base chains accept by default: traffic not from the app bridge never
// enters the app chains, and an accept here does not bypass other tables.

// DefaultAppFirewallTable names the tables of an AppFirewallConfig without
// one.
const DefaultAppFirewallTable = "noops_app"

// Chain names of the app firewall's inet table (the base chains are
// chainForward, chainInput and chainPostrouting).
const (
	chainPostrouting = "postrouting"
	chainAppForward  = "app-forward"
	chainAppInput    = "app-input"
)

// appFirewallNeeds is what the app firewall needs, for error hints.
var appFirewallNeeds = nftUser{
	name:   "the app firewall",
	kernel: "CONFIG_NF_TABLES, NF_TABLES_INET, NF_TABLES_BRIDGE, NFT_CT, NFT_REJECT_INET, NFT_NAT, NFT_MASQ",
}

// AppFirewallConfig says which network the app firewall confines.
type AppFirewallConfig struct {
	Table     string       // name of both tables (inet and bridge); "" → DefaultAppFirewallTable
	Bridge    string       // the app network's bridge (required); it need not exist yet
	Subnet    netip.Prefix // the app network (required)
	HostPorts []uint16     // TCP ports of the host that sandboxes may reach
}

// Egress is a destination a sandbox may open TCP connections to.
type Egress struct {
	Prefix netip.Prefix
	Port   uint16
}

// String formats e as a manifest entry: 203.0.113.7:443,
// 10.0.0.0/8:5432, [2001:db8::/32]:443.
func (e Egress) String() string {
	if e.Prefix.IsSingleIP() {
		return netip.AddrPortFrom(e.Prefix.Addr(), e.Port).String()
	}
	p := strconv.Itoa(int(e.Port))
	if e.Prefix.Addr().Is6() {
		return "[" + e.Prefix.String() + "]:" + p
	}
	return e.Prefix.String() + ":" + p
}

func compareEgress(a, b Egress) int {
	if c := comparePrefix(a.Prefix, b.Prefix); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// AppFirewall is the app network's firewall. Its methods are safe for
// concurrent use.
type AppFirewall struct {
	cfg AppFirewallConfig // normalized
	// byName says whether the bridge table recognises the app bridge by
	// name; false on a kernel without nft_meta_bridge, where it matches the
	// subnet's addresses instead.
	byName bool

	mu        sync.Mutex
	sandboxes map[string]sandboxEgress // by id; replaced, never changed in place
	closed    bool
}

// sandboxEgress is one sandbox's address and allow-list (normalized).
type sandboxEgress struct {
	addr   netip.Addr
	egress []Egress
}

// NewAppFirewall applies the app firewall's tables, replacing any of the
// same name, with no sandbox allowed anything yet. The tables outlive the
// process; Close deletes them.
func NewAppFirewall(cfg AppFirewallConfig) (*AppFirewall, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	f := &AppFirewall{cfg: cfg, byName: true, sandboxes: map[string]sandboxEgress{}}
	err = f.apply(f.sandboxes)
	if errors.Is(err, unix.EOPNOTSUPP) {
		// No nft_meta_bridge: match the subnet instead, if br_netfilter
		// makes up for what that leaves open.
		if berr := bridgeNetfilter(os.DirFS("/"), cfg.Bridge); berr != nil {
			return nil, errkind.WithHint(errkind.Unavailable,
				fmt.Errorf("app firewall: the kernel refuses to match bridge %s by name (%w), and %w: sandboxes could reach one another", cfg.Bridge, err, berr),
				"load nft_meta_bridge (CONFIG_NFT_BRIDGE_META), or load br_netfilter and set sysctl net.bridge.bridge-nf-call-iptables=1 and net.bridge.bridge-nf-call-ip6tables=1")
		}
		f.byName = false
		err = f.apply(f.sandboxes)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Allow sets the address of sandbox id and the destinations it may reach,
// replacing what an earlier Allow of id set, and re-applies the tables.
// Entries of the other IP family than addr are left out (they could never
// match): a host name may resolve to both. Another id recorded with the
// same address is forgotten, since the address is now id's. On failure
// the rules stay as they were.
func (f *AppFirewall) Allow(id string, addr netip.Addr, egress []Egress) error {
	sb, err := f.sandboxEgress(id, addr, egress)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.errClosed()
	}
	next := maps.Clone(f.sandboxes)
	maps.DeleteFunc(next, func(_ string, s sandboxEgress) bool { return s.addr == addr })
	next[id] = sb
	if err := f.apply(next); err != nil {
		return fmt.Errorf("allowing egress of sandbox %s: %w", id, err)
	}
	f.sandboxes = next
	return nil
}

// Forget removes sandbox id's allow-list and re-applies the tables. An
// unknown id is not an error.
func (f *AppFirewall) Forget(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.errClosed()
	}
	if _, ok := f.sandboxes[id]; !ok {
		return nil
	}
	next := maps.Clone(f.sandboxes)
	delete(next, id)
	if err := f.apply(next); err != nil {
		return fmt.Errorf("forgetting egress of sandbox %s: %w", id, err)
	}
	f.sandboxes = next
	return nil
}

// Close deletes both tables, opening the app network again. Allow and
// Forget fail afterwards; Close again is not an error.
func (f *AppFirewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return classifyNFT(appFirewallNeeds, fmt.Errorf("opening nftables: %w", err))
	}
	deleteTable(c, &nftables.Table{Name: f.cfg.Table, Family: nftables.TableFamilyBridge})
	deleteTable(c, &nftables.Table{Name: f.cfg.Table, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		return classifyNFT(appFirewallNeeds, fmt.Errorf("removing app firewall tables bridge and inet %s: %w", f.cfg.Table, err))
	}
	f.closed = true
	f.sandboxes = map[string]sandboxEgress{}
	return nil
}

func (f *AppFirewall) errClosed() error {
	return errkind.Errorf(errkind.Conflict, "app firewall %s is closed", f.cfg.Table)
}

// normalize validates cfg and fills in the defaults: the table name, and
// HostPorts without duplicates, sorted.
func (cfg AppFirewallConfig) normalize() (AppFirewallConfig, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultAppFirewallTable
	}
	if err := validTable(cfg.Table); err != nil {
		return cfg, err
	}
	if cfg.Bridge == "" {
		return cfg, errkind.Errorf(errkind.Invalid, "app firewall: the app network's bridge is not set")
	}
	if err := validBridge(cfg.Bridge); err != nil {
		return cfg, err
	}
	if !cfg.Subnet.IsValid() {
		return cfg, errkind.Errorf(errkind.Invalid, "app firewall: the app network's subnet is not set")
	}
	if err := validPrefix(cfg.Subnet); err != nil {
		return cfg, fmt.Errorf("app firewall: app subnet: %w", err)
	}
	ports := slices.Clone(cfg.HostPorts)
	if slices.Contains(ports, 0) {
		return cfg, errkind.Errorf(errkind.Invalid, "app firewall: host port 0 is not a port")
	}
	slices.Sort(ports)
	cfg.HostPorts = slices.Compact(ports)
	return cfg, nil
}

// sandboxEgress validates Allow's arguments and returns the allow-list
// sorted, without duplicates or entries of the other family.
func (f *AppFirewall) sandboxEgress(id string, addr netip.Addr, egress []Egress) (sandboxEgress, error) {
	if err := validID(id); err != nil {
		return sandboxEgress{}, err
	}
	if !addr.IsValid() || addr.Zone() != "" || addr.Is4In6() {
		return sandboxEgress{}, errkind.Errorf(errkind.Invalid, "sandbox %s: address %s is not a plain IPv4 or IPv6 address", id, addr)
	}
	if !f.cfg.Subnet.Contains(addr) {
		return sandboxEgress{}, errkind.Errorf(errkind.Invalid, "sandbox %s: address %s is not in the app network %s", id, addr, f.cfg.Subnet)
	}
	var list []Egress
	for _, e := range egress {
		if err := validPrefix(e.Prefix); err != nil {
			return sandboxEgress{}, fmt.Errorf("sandbox %s: egress: %w", id, err)
		}
		if e.Port == 0 {
			return sandboxEgress{}, errkind.Errorf(errkind.Invalid, "sandbox %s: egress to %s has no port", id, e.Prefix)
		}
		if e.Prefix.Addr().Is4() == addr.Is4() {
			list = append(list, e)
		}
	}
	slices.SortFunc(list, compareEgress)
	return sandboxEgress{addr: addr, egress: slices.Compact(list)}, nil
}

// apply replaces both tables with the rules for sandboxes, in one batch.
func (f *AppFirewall) apply(sandboxes map[string]sandboxEgress) error {
	c, err := nftables.New()
	if err != nil {
		return classifyNFT(appFirewallNeeds, fmt.Errorf("opening nftables: %w", err))
	}
	br := &nftables.Table{Name: f.cfg.Table, Family: nftables.TableFamilyBridge}
	replaceTable(c, br)
	f.addBridgeRules(c, br)
	inet := &nftables.Table{Name: f.cfg.Table, Family: nftables.TableFamilyINet}
	replaceTable(c, inet)
	f.addINetRules(c, inet, sandboxes)
	if err := c.Flush(); err != nil {
		return classifyNFT(appFirewallNeeds, fmt.Errorf("applying app firewall tables bridge and inet %s: %w", f.cfg.Table, err))
	}
	return nil
}

// addBridgeRules queues the bridge table's chain: no IP between sandboxes.
func (f *AppFirewall) addBridgeRules(c *nftables.Conn, t *nftables.Table) {
	// NF_BR_FORWARD is NF_INET_FORWARD's number.
	fwd := addBaseChain(c, t, chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, priorityBridgeFilter)
	if f.byName {
		addRule(c, fwd, "sandbox to sandbox over IPv4", matchBridgeName(f.cfg.Bridge), matchEtherType(unix.ETH_P_IP), drop())
		addRule(c, fwd, "sandbox to sandbox over IPv6", matchBridgeName(f.cfg.Bridge), matchEtherType(unix.ETH_P_IPV6), drop())
		return
	}
	addRule(c, fwd, "from the app subnet", matchBridgedAddr(srcAddr, f.cfg.Subnet), drop())
	addRule(c, fwd, "to the app subnet", matchBridgedAddr(dstAddr, f.cfg.Subnet), drop())
}

// addINetRules queues the inet table's chains: egress and the host.
func (f *AppFirewall) addINetRules(c *nftables.Conn, t *nftables.Table, sandboxes map[string]sandboxEgress) {
	bridge := f.cfg.Bridge
	fwd := addBaseChain(c, t, chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, priorityBeforeFilter)
	in := addBaseChain(c, t, chainInput, nftables.ChainTypeFilter, nftables.ChainHookInput, priorityBeforeFilter)
	post := addBaseChain(c, t, chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	appFwd := c.AddChain(&nftables.Chain{Name: chainAppForward, Table: t})
	appIn := c.AddChain(&nftables.Chain{Name: chainAppInput, Table: t})
	accept := verdict(expr.VerdictAccept)

	addRule(c, fwd, "from the app bridge", matchIifname(bridge), jump(appFwd.Name))
	addRule(c, in, "from the app bridge", matchIifname(bridge), jump(appIn.Name))
	addRule(c, post, "egress of the app subnet", matchAddr(srcAddr, f.cfg.Subnet), matchOifname(expr.CmpOpNeq, bridge), masquerade())

	addRule(c, appFwd, "to another sandbox", matchOifname(expr.CmpOpEq, bridge), reject())
	addRule(c, appFwd, "replies", matchEstablished(), accept)
	for _, id := range slices.Sorted(maps.Keys(sandboxes)) {
		sb := sandboxes[id]
		from := matchAddr(srcAddr, netip.PrefixFrom(sb.addr, sb.addr.BitLen()))
		for _, e := range sb.egress {
			addRule(c, appFwd, "sandbox "+id+" to "+e.String(), from, matchAddr(dstAddr, e.Prefix), matchDport(unix.IPPROTO_TCP, e.Port), accept)
		}
	}
	addRule(c, appFwd, "the rest", reject())

	addRule(c, appIn, "replies", matchEstablished(), accept)
	for _, p := range f.cfg.HostPorts {
		addRule(c, appIn, "host port "+strconv.Itoa(int(p)), matchDport(unix.IPPROTO_TCP, p), accept)
	}
	addRule(c, appIn, "IPv6 neighbour discovery", matchNeighbourDiscovery(), accept)
	addRule(c, appIn, "the rest of the host", reject())
}

// bridgeNetfilter reports, as an error saying what is off, whether
// br_netfilter hands bridge's IPv4 and IPv6 frames to the IP hooks: the
// module is loaded and the net.bridge.bridge-nf-call-iptables and
// -ip6tables sysctls are on, or the bridge's own nf_call_iptables and
// nf_call_ip6tables options are. fsys is the root file system.
func bridgeNetfilter(fsys fs.FS, bridge string) error {
	on := func(p string) bool {
		b, err := fs.ReadFile(fsys, p)
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}
	var off []string
	for _, x := range []string{"iptables", "ip6tables"} {
		if !on("proc/sys/net/bridge/bridge-nf-call-"+x) && !on("sys/class/net/"+bridge+"/bridge/nf_call_"+x) {
			off = append(off, "net.bridge.bridge-nf-call-"+x)
		}
	}
	if len(off) > 0 {
		return fmt.Errorf("br_netfilter does not pass the bridge's frames to the IP hooks (%s off, or br_netfilter not loaded)", strings.Join(off, " and "))
	}
	return nil
}

// ResolveEgress turns manifest entries into Egress rules: an address and
// port ("203.0.113.7:443", "[2001:db8::7]:443"), a prefix and port
// ("10.0.0.0/8:5432", "[2001:db8::/32]:443"), or a host name and port
// ("api.example.com:443"), which stands for every address the name
// resolves to, now, with r (nil means net.DefaultResolver). The result
// keeps the entries' order, without duplicates. A malformed entry is an
// Invalid error, as is a name that does not exist; a lookup that fails
// otherwise is Unavailable. Either names the entry.
func ResolveEgress(ctx context.Context, r *net.Resolver, entries []string) ([]Egress, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	var out []Egress
	for _, entry := range entries {
		host, port, err := splitEgress(entry)
		if err != nil {
			return nil, err
		}
		prefixes, err := egressPrefixes(host)
		if err != nil {
			return nil, errkind.Errorf(errkind.Invalid, "egress entry %q: %w", entry, err)
		}
		if prefixes == nil {
			addrs, err := r.LookupNetIP(ctx, "ip", host)
			if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				return nil, errkind.Errorf(errkind.Invalid, "egress entry %q: host %s does not resolve", entry, host)
			}
			if err != nil {
				return nil, errkind.Errorf(errkind.Unavailable, "resolving egress entry %q: %w", entry, err)
			}
			for _, a := range addrs {
				a = a.Unmap().WithZone("")
				prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
			}
			if len(prefixes) == 0 {
				return nil, errkind.Errorf(errkind.Invalid, "egress entry %q: host %s has no address", entry, host)
			}
		}
		for _, p := range prefixes {
			if e := (Egress{Prefix: p, Port: port}); !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// splitEgress splits a manifest entry into its host part and its port.
func splitEgress(entry string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(entry)
	if err != nil || host == "" {
		return "", 0, errkind.Errorf(errkind.Invalid, "egress entry %q is not host:port, address:port or prefix:port (such as api.example.com:443, 203.0.113.7:443, 10.0.0.0/8:5432)", entry)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return "", 0, errkind.Errorf(errkind.Invalid, "egress entry %q: port %q is not a number from 1 to 65535", entry, ps)
	}
	return host, uint16(port), nil
}

// egressPrefixes parses the host part of an entry as a prefix or an
// address; a host name gives nil.
func egressPrefixes(host string) ([]netip.Prefix, error) {
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return nil, fmt.Errorf("%q is not a prefix such as 10.0.0.0/8", host)
		}
		if err := validPrefix(p); err != nil {
			return nil, err
		}
		return []netip.Prefix{p}, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil, fmt.Errorf("address %s has a zone", a)
		}
		a = a.Unmap()
		return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
	}
	if strings.ContainsAny(host, ":%[] \t") || strings.Trim(host, "0123456789.") == "" {
		return nil, fmt.Errorf("%q is neither an address nor a host name", host)
	}
	return nil, nil
}
