package netns

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"noops/internal/errkind"
)

// The build firewall confines the build network (the IPMasq bridge whose
// steps fetch packages) to the internet: a build step reaches neither the
// app sandboxes, nor the host itself (the admin API, the gateway, whatever
// listens there), nor private networks, except for a few allowed
// address:port pairs such as the DNS resolvers. It is one nftables table of
// family inet, replaced as a whole; in nft's syntax, for bridge noopsb0 and
// subnet 10.89.0.0/16:
//
//	table inet noops {
//		chain forward {
//			type filter hook forward priority filter - 1; policy accept;
//			iifname "noopsb0" jump build-forward
//			ip saddr 10.89.0.0/16 jump build-forward
//		}
//		chain input {
//			type filter hook input priority filter - 1; policy accept;
//			iifname "noopsb0" jump build-input
//			ip saddr 10.89.0.0/16 jump build-input
//		}
//		chain build-forward {
//			ct state established,related accept
//			ip daddr 192.168.1.1 udp dport 53 accept   # one pair per Allow entry
//			ip daddr 192.168.1.1 tcp dport 53 accept
//			ip daddr 10.0.0.0/8 counter reject with icmpx admin-prohibited
//			…                                          # one rule per protected prefix
//			ip6 daddr fe80::/10 counter reject with icmpx admin-prohibited
//			accept
//		}
//		chain build-input {
//			ct state established,related accept
//			ip daddr 192.168.1.1 udp dport 53 accept
//			ip daddr 192.168.1.1 tcp dport 53 accept
//			icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
//			counter reject with icmpx admin-prohibited
//		}
//	}
//
// Packets are matched by the bridge they arrive on as well as by source
// address: the bridge also carries IPv6 link-local traffic, which the build
// subnet does not cover and which would otherwise reach every service the
// host runs on [::]. The input chain rejects whatever is not allowed, so
// every address of the host is protected, including addresses it gains
// after the table is applied. A rejected connection fails with "no route to
// host" (EHOSTUNREACH; EACCES over IPv6) rather than timing out: at once,
// or after a retransmission (a second or so) when the kernel's rate limit
// on ICMP errors held back the first one.
//
// Nothing else changes: both base chains accept by default, other traffic
// (the app sandboxes', the host's own) never enters the build chains, and
// an accept in this table does not bypass other tables' rules. Traffic
// between two build sandboxes on the same bridge is bridged, not routed,
// so it passes only through these chains when br_netfilter hands bridged
// packets to the IP hooks (it is then rejected as private).

// DefaultFirewallTable is the nftables table (family inet) of a
// FirewallConfig without one.
const DefaultFirewallTable = "noops"

// FirewallConfig says which network the build firewall confines and what
// that network may not reach.
type FirewallConfig struct {
	// Table is the nftables table (family inet) that holds the rules; ""
	// means DefaultFirewallTable. ApplyFirewall replaces it as a whole.
	Table string
	// Bridge is the build network's bridge interface (Network.Bridge).
	// Required. It need not exist yet: it is matched by name.
	Bridge string
	// Build is the build network's subnet (Network.Subnet). Required.
	Build netip.Prefix
	// Protected is what builds may not reach beyond the host itself,
	// typically the app network's subnet. The private and special ranges
	// of AlwaysProtected are added to it.
	Protected []netip.Prefix
	// Allow are the exceptions, reachable over both UDP and TCP even when
	// they are in Protected or on the host: the DNS resolvers that builds
	// are given, say (port 53).
	Allow []netip.AddrPort
}

// AlwaysProtected are the ranges no build reaches whatever its
// FirewallConfig says: private (RFC 1918), shared (RFC 6598), link-local and
// loopback addresses, IPv6 unique-local and link-local.
func AlwaysProtected() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
		"169.254.0.0/16", "127.0.0.0/8", "fc00::/7", "fe80::/10",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// Chain names inside the table.
const (
	chainForward      = "forward"
	chainInput        = "input"
	chainBuildForward = "build-forward"
	chainBuildInput   = "build-input"
)

// buildFirewallNeeds is what the build firewall needs, for error hints.
var buildFirewallNeeds = nftUser{name: "the build firewall", kernel: "CONFIG_NF_TABLES, NF_TABLES_INET, NFT_CT, NFT_REJECT_INET"}

// tableRE is what a table name may be: nft accepts more, but this needs no
// quoting anywhere.
var tableRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$`)

// ApplyFirewall installs the build firewall that cfg describes, replacing
// whatever table of that name there was. The old table is deleted and the
// new one added in a single netlink batch, which the kernel applies
// atomically: re-applying never leaves a moment without rules, and a
// failure leaves the old table as it was. The table outlives the process;
// RemoveFirewall deletes it.
func ApplyFirewall(cfg FirewallConfig) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return classifyNFT(buildFirewallNeeds, fmt.Errorf("opening nftables: %w", err))
	}
	t := &nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyINet}
	replaceTable(c, t)
	addFirewall(c, t, cfg)
	if err := c.Flush(); err != nil {
		return classifyNFT(buildFirewallNeeds, fmt.Errorf("applying firewall table inet %s: %w", cfg.Table, err))
	}
	return nil
}

// RemoveFirewall deletes the firewall table; one that does not exist is
// not an error. "" means DefaultFirewallTable.
func RemoveFirewall(table string) error {
	if table == "" {
		table = DefaultFirewallTable
	}
	if err := validTable(table); err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return classifyNFT(buildFirewallNeeds, fmt.Errorf("opening nftables: %w", err))
	}
	deleteTable(c, &nftables.Table{Name: table, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		return classifyNFT(buildFirewallNeeds, fmt.Errorf("removing firewall table inet %s: %w", table, err))
	}
	return nil
}

// normalize validates cfg and fills in the defaults: the table name, and
// Protected completed with AlwaysProtected, without duplicates, sorted.
func (cfg FirewallConfig) normalize() (FirewallConfig, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultFirewallTable
	}
	if err := validTable(cfg.Table); err != nil {
		return cfg, err
	}
	if cfg.Bridge == "" {
		return cfg, errkind.Errorf(errkind.Invalid, "firewall: the build network's bridge is not set")
	}
	if err := validBridge(cfg.Bridge); err != nil {
		return cfg, err
	}
	if !cfg.Build.IsValid() {
		return cfg, errkind.Errorf(errkind.Invalid, "firewall: the build network's subnet is not set")
	}
	if err := validPrefix(cfg.Build); err != nil {
		return cfg, fmt.Errorf("firewall: build subnet: %w", err)
	}
	protected := AlwaysProtected()
	for _, p := range cfg.Protected {
		if err := validPrefix(p); err != nil {
			return cfg, fmt.Errorf("firewall: protected prefix: %w", err)
		}
		protected = append(protected, p)
	}
	slices.SortFunc(protected, comparePrefix)
	cfg.Protected = slices.Compact(protected)
	allow := slices.Clone(cfg.Allow)
	for _, a := range allow {
		if !a.Addr().IsValid() || a.Addr().Zone() != "" || a.Addr().Is4In6() {
			return cfg, errkind.Errorf(errkind.Invalid, "firewall: allowed address %s is not a plain IPv4 or IPv6 address", a.Addr())
		}
		if a.Port() == 0 {
			return cfg, errkind.Errorf(errkind.Invalid, "firewall: allowed address %s has no port", a.Addr())
		}
	}
	slices.SortFunc(allow, func(a, b netip.AddrPort) int { return a.Compare(b) })
	cfg.Allow = slices.Compact(allow)
	return cfg, nil
}

func validTable(name string) error {
	if !tableRE.MatchString(name) {
		return errkind.Errorf(errkind.Invalid, "firewall table name %q is not valid: at most 64 letters, digits, '_', '.' or '-', starting with a letter", name)
	}
	return nil
}

func validPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errkind.Errorf(errkind.Invalid, "%s is not a valid prefix", p)
	case p.Addr().Zone() != "" || p.Addr().Is4In6():
		return errkind.Errorf(errkind.Invalid, "%s is not a plain IPv4 or IPv6 prefix", p)
	case p != p.Masked():
		return errkind.Errorf(errkind.Invalid, "%s has host bits set; did you mean %s?", p, p.Masked())
	}
	return nil
}

// comparePrefix orders IPv4 before IPv6, then by address, then shorter
// prefixes first.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// addFirewall queues the chains and rules of cfg (normalized) in table t.
func addFirewall(c *nftables.Conn, t *nftables.Table, cfg FirewallConfig) {
	fwd := addBaseChain(c, t, chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, priorityBeforeFilter)
	in := addBaseChain(c, t, chainInput, nftables.ChainTypeFilter, nftables.ChainHookInput, priorityBeforeFilter)
	buildFwd := c.AddChain(&nftables.Chain{Name: chainBuildForward, Table: t})
	buildIn := c.AddChain(&nftables.Chain{Name: chainBuildInput, Table: t})

	// Both directions into the host's stack from the build network.
	for _, hook := range []struct{ base, build *nftables.Chain }{{fwd, buildFwd}, {in, buildIn}} {
		addRule(c, hook.base, "from the build bridge", matchIifname(cfg.Bridge), jump(hook.build.Name))
		addRule(c, hook.base, "from the build subnet", matchAddr(srcAddr, cfg.Build), jump(hook.build.Name))
	}

	// What both build chains start with: replies, and the exceptions.
	for _, ch := range []*nftables.Chain{buildFwd, buildIn} {
		addRule(c, ch, "replies", matchEstablished(), verdict(expr.VerdictAccept))
		for _, a := range cfg.Allow {
			p := netip.PrefixFrom(a.Addr(), a.Addr().BitLen())
			for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
				addRule(c, ch, "allowed "+a.String(), matchAddr(dstAddr, p), matchDport(proto, a.Port()), verdict(expr.VerdictAccept))
			}
		}
	}
	for _, p := range cfg.Protected {
		addRule(c, buildFwd, "protected "+p.String(), matchAddr(dstAddr, p), reject())
	}
	addRule(c, buildFwd, "the internet", verdict(expr.VerdictAccept))
	addRule(c, buildIn, "IPv6 neighbour discovery", matchNeighbourDiscovery(), verdict(expr.VerdictAccept))
	addRule(c, buildIn, "the host", reject())
}
