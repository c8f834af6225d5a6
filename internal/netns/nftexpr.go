package netns

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"noops/internal/errkind"
)

// The building blocks of the nftables rule sets (firewall.go,
// appfirewall.go): tables replaced as a whole, chains, and the expressions
// that nft itself generates for the matches written in each file's comment.

// Base chain priorities.
var (
	// priorityBeforeFilter runs a chain of an inet table just before
	// iptables' filter table (and nft's own filter chains), so that an
	// iptables ACCEPT cannot let through what these rules reject.
	priorityBeforeFilter = nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 1)
	// priorityBridgeFilter is the filter priority of the bridge family
	// (NF_BR_PRI_FILTER_BRIDGED), before br_netfilter (0) hands bridged
	// frames to the IP hooks.
	priorityBridgeFilter = nftables.ChainPriorityRef(-200)
)

// replaceTable queues the deletion of table t and the addition of an empty
// one; what is queued next fills it. Flushed in one batch, the replacement
// is atomic: a failure leaves the old table as it was.
func replaceTable(c *nftables.Conn, t *nftables.Table) {
	// Adding before deleting makes the delete valid when there is no table.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
}

// deleteTable queues the deletion of table t, which need not exist.
func deleteTable(c *nftables.Conn, t *nftables.Table) {
	c.AddTable(t) // so that the delete finds one
	c.DelTable(t)
}

// addBaseChain queues a chain of t on hook, with policy accept.
func addBaseChain(c *nftables.Conn, t *nftables.Table, name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return c.AddChain(&nftables.Chain{
		Name:     name,
		Table:    t,
		Type:     typ,
		Hooknum:  hook,
		Priority: prio,
		Policy:   &accept,
	})
}

// addRule queues a rule at the end of ch, made of exprs in order, with
// comment as nft shows it.
func addRule(c *nftables.Conn, ch *nftables.Chain, comment string, exprs ...[]expr.Any) {
	c.AddRule(&nftables.Rule{
		Table:    ch.Table,
		Chain:    ch,
		Exprs:    slices.Concat(exprs...),
		UserData: userdata.AppendString(nil, userdata.TypeComment, comment),
	})
}

// direction says which address of the IP header a match reads.
type direction bool

const (
	srcAddr direction = false
	dstAddr direction = true
)

// matchAddr matches packets whose source or destination address is in p,
// with the network-protocol guard that nft adds implicitly in an inet
// table.
func matchAddr(dir direction, p netip.Prefix) []expr.Any {
	proto := byte(unix.NFPROTO_IPV4)
	if p.Addr().Is6() {
		proto = unix.NFPROTO_IPV6
	}
	return append([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}, addrPayload(dir, p)...)
}

// matchBridgedAddr is matchAddr for a table of family bridge, where the
// guard is the frame's EtherType (nft's `ether type ip`).
func matchBridgedAddr(dir direction, p netip.Prefix) []expr.Any {
	typ := uint16(unix.ETH_P_IP)
	if p.Addr().Is6() {
		typ = unix.ETH_P_IPV6
	}
	return append(matchEtherType(typ), addrPayload(dir, p)...)
}

// addrPayload compares the source or destination address of the network
// header with p; a guard must have checked the protocol.
func addrPayload(dir direction, p netip.Prefix) []expr.Any {
	off := uint32(12) // IPv4 saddr; daddr follows it
	if p.Addr().Is6() {
		off = 8
	}
	size := uint32(p.Addr().BitLen() / 8)
	if dir == dstAddr {
		off += size
	}
	exprs := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size},
	}
	if p.Bits() < p.Addr().BitLen() {
		mask := netip.PrefixFrom(allOnes(int(size)), p.Bits()).Masked().Addr().AsSlice()
		exprs = append(exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)})
	}
	return append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
}

// allOnes is the address of n bytes with every bit set.
func allOnes(n int) netip.Addr {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xff
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// matchEtherType matches frames of EtherType typ (nft's `meta protocol`);
// a VLAN tag has been taken off on reception, so a tagged frame matches
// the type it carries.
func matchEtherType(typ uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(typ)},
	}
}

// matchDport matches packets of transport protocol proto to port.
func matchDport(proto byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// matchNeighbourDiscovery matches IPv6 neighbour solicitations and
// advertisements. Conntrack does not track them, and without them a
// sandbox that has forgotten the host's link-layer address would see its
// packets to the host vanish instead of being rejected.
func matchNeighbourDiscovery() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{ndNeighbourSolicit}, ToData: []byte{ndNeighbourAdvert}},
	}
}

// ICMPv6 types of neighbour discovery (RFC 4861).
const (
	ndNeighbourSolicit = 135
	ndNeighbourAdvert  = 136
)

// matchIifname matches packets that arrived on the interface called name.
func matchIifname(name string) []expr.Any {
	return matchName(expr.MetaKeyIIFNAME, expr.CmpOpEq, name)
}

// matchOifname matches packets that leave (op CmpOpEq), or do not leave
// (CmpOpNeq), through the interface called name.
func matchOifname(op expr.CmpOp, name string) []expr.Any {
	return matchName(expr.MetaKeyOIFNAME, op, name)
}

// matchBridgeName matches frames that bridge name forwards from one of its
// ports to another (nft's `meta ibrname name meta obrname name`), in a
// table of family bridge. The kernel needs nft_meta_bridge
// (CONFIG_NFT_BRIDGE_META) for it and refuses it otherwise with
// EOPNOTSUPP.
func matchBridgeName(name string) []expr.Any {
	return append(matchName(expr.MetaKeyBRIIIFNAME, expr.CmpOpEq, name), matchName(expr.MetaKeyBRIOIFNAME, expr.CmpOpEq, name)...)
}

func matchName(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

// ifname is an interface name as the kernel compares it: NUL-padded to
// IFNAMSIZ.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// matchEstablished matches packets of connections already accepted, and
// the ICMP errors that relate to them.
func matchEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  make([]byte, 4),
		},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func verdict(kind expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind}}
}

func jump(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

// reject counts the packet and rejects it with "administratively
// prohibited" (ICMP or ICMPv6, as the packet is), so that a tool fails at
// once instead of waiting for a timeout.
func reject() []expr.Any {
	return []expr.Any{
		&expr.Counter{},
		&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED},
	}
}

// drop counts the packet and drops it silently, for where rejecting is
// not possible (the bridge family's forward hook).
func drop() []expr.Any {
	return []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}
}

// masquerade rewrites the source address of a new connection to the
// address of the interface it leaves through (in a nat chain).
func masquerade() []expr.Any {
	return []expr.Any{&expr.Masq{}}
}

// nftUser names a rule set and what it needs of the kernel, for the hints
// of classifyNFT.
type nftUser struct {
	name   string // "the build firewall"
	kernel string // kernel options, "CONFIG_NF_TABLES, …"
}

// classifyNFT marks refused netlink requests as a permission problem and a
// kernel without nf_tables as unavailable; anything else is internal.
func classifyNFT(u nftUser, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return errkind.WithHint(errkind.Permission, err, u.name+" needs root (CAP_NET_ADMIN)")
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.EAFNOSUPPORT):
		return errkind.WithHint(errkind.Unavailable, err, "the kernel needs nf_tables ("+u.kernel+")")
	}
	return err
}
