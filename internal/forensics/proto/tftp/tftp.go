package tftp

import (
	"fmt"
	"sort"

	"noops/internal/forensics/flow"
)

// request is an RRQ or WRQ sent to port 69.
type request struct {
	dg *flow.Datagram
	pk packet
}

// pairKey is a flow's two endpoints in a fixed order.
type pairKey struct{ a, b flow.Endpoint }

func keyOf(x, y flow.Endpoint) pairKey {
	if x.Addr.Less(y.Addr) || (x.Addr == y.Addr && x.Port < y.Port) {
		return pairKey{x, y}
	}
	return pairKey{y, x}
}

func (k pairKey) has(e flow.Endpoint) bool { return k.a == e || k.b == e }

type tpkt struct {
	dg *flow.Datagram
	pk packet
	ok bool // parsed as TFTP
}

// group is the packets of one transfer: a flow's packets after a request
// (up to the next request from the same client), or a flow no request
// explains.
type group struct {
	req  *request
	key  pairKey
	pkts []tpkt
}

// wellKnown are UDP ports whose traffic is not a TFTP transfer even when
// its bytes parse as one.
var wellKnown = map[uint16]bool{53: true, 67: true, 68: true, 123: true, 137: true, 138: true, 161: true,
	162: true, 443: true, 500: true, 514: true, 1900: true, 4500: true, 5353: true}

// Extract follows TFTP transfers (RFC 1350, with the RFC 2347 options
// blksize and tsize): the RRQ or WRQ to port 69, then the DATA blocks
// and ACKs between the client's port and the server's new one. Blocks
// are placed by number (duplicates dropped, block numbers past 65535
// unwrapped); missing blocks are the object's Gaps; a short block ends
// the file. A transfer whose request was not captured is recognised by
// its DATA and ACK packets and named "tftp-<port>" after the sending
// port.
//
// The objects read from the datagrams' payloads: keep them until the
// objects are consumed.
func Extract(dgrams []flow.Datagram) ([]*flow.Object, []flow.Warning) {
	order := make([]int, len(dgrams))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return dgrams[order[i]].Frame < dgrams[order[j]].Frame })

	var (
		reqs  []*request
		flows = map[pairKey][]tpkt{}
		keys  []pairKey
	)
	for _, i := range order {
		d := &dgrams[i]
		pk, ok := parse(d.Payload)
		if ok && (pk.op == opRRQ || pk.op == opWRQ) {
			if d.Dst.Port == 69 {
				reqs = append(reqs, &request{dg: d, pk: pk})
			}
			continue
		}
		k := keyOf(d.Src, d.Dst)
		if _, seen := flows[k]; !seen {
			keys = append(keys, k)
		}
		flows[k] = append(flows[k], tpkt{dg: d, pk: pk, ok: ok})
	}
	reqs = dedupe(reqs)

	var (
		objs  []*flow.Object
		warns []flow.Warning
	)
	got := map[*request]bool{}
	for _, k := range keys {
		for _, g := range split(k, flows[k], reqs) {
			if g.req == nil && !plausible(g) {
				continue
			}
			if g.req != nil && got[g.req] {
				warns = append(warns, flow.Warning{Frame: g.pkts[0].dg.Frame, Message: fmt.Sprintf(
					"TFTP %s %q: a second transfer (%s↔%s) answered the same request; it is extracted too", opName(g.req.pk.op), g.req.pk.name, k.a, k.b)})
			}
			o, w := assemble(g)
			warns = append(warns, w...)
			if o != nil {
				objs = append(objs, o)
				if g.req != nil {
					got[g.req] = true
				}
			}
		}
	}
	for _, r := range reqs {
		if !got[r] && !answered(r, keys, flows) {
			warns = append(warns, flow.Warning{Frame: r.dg.Frame, Message: fmt.Sprintf(
				"TFTP %s %q from %s: no transfer for it was captured", opName(r.pk.op), r.pk.name, r.dg.Src)})
		}
	}
	return objs, warns
}

// answered says whether any packet followed r on a flow of its client
// (the reason it has no object was then reported already).
func answered(r *request, keys []pairKey, flows map[pairKey][]tpkt) bool {
	for _, k := range keys {
		if !k.has(r.dg.Src) {
			continue
		}
		for _, p := range flows[k] {
			if p.dg.Frame > r.dg.Frame && p.ok {
				return true
			}
		}
	}
	return false
}

func opName(op uint16) string {
	if op == opWRQ {
		return "WRQ"
	}
	return "RRQ"
}

// dedupe drops requests the client repeated (the same bytes from the same
// port) before anything answered them.
func dedupe(reqs []*request) []*request {
	var out []*request
	last := map[flow.Endpoint]*request{}
	for _, r := range reqs {
		if p := last[r.dg.Src]; p != nil && string(p.dg.Payload) == string(r.dg.Payload) {
			continue
		}
		last[r.dg.Src] = r
		out = append(out, r)
	}
	return out
}

// split cuts a flow's packets at the requests its client endpoint sent:
// each packet belongs to the latest request before it.
func split(k pairKey, pkts []tpkt, reqs []*request) []*group {
	var own []*request
	for _, r := range reqs {
		if k.has(r.dg.Src) && !k.has(r.dg.Dst) {
			other := k.a
			if other == r.dg.Src {
				other = k.b
			}
			if other.Addr == r.dg.Dst.Addr || !sameAddrAny(k, r) {
				own = append(own, r)
			}
		}
	}
	var out []*group
	cur := &group{key: k}
	ri := 0
	for _, p := range pkts {
		for ri < len(own) && own[ri].dg.Frame < p.dg.Frame {
			if len(cur.pkts) > 0 {
				out = append(out, cur)
			}
			cur = &group{key: k, req: own[ri]}
			ri++
		}
		cur.pkts = append(cur.pkts, p)
	}
	if len(cur.pkts) > 0 {
		out = append(out, cur)
	}
	return out
}

// sameAddrAny is false when the server answered from another address than
// the request went to (a multi-homed server): then any address will do.
func sameAddrAny(k pairKey, r *request) bool {
	return k.a.Addr == r.dg.Dst.Addr || k.b.Addr == r.dg.Dst.Addr
}

// plausible says whether a flow no request explains is a TFTP transfer:
// every packet parses, none on a well-known port, and DATA block 1 is
// there.
func plausible(g *group) bool {
	if wellKnown[g.key.a.Port] || wellKnown[g.key.b.Port] {
		return false
	}
	one := false
	for _, p := range g.pkts {
		if !p.ok || p.pk.op == opRRQ || p.pk.op == opWRQ {
			return false
		}
		if p.pk.op == opDATA && p.pk.block == 1 {
			one = true
		}
	}
	return one
}
