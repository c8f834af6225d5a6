package ftp

import (
	"fmt"
	"sort"

	"noops/internal/forensics/flow"
)

// pool holds the connections that may carry FTP data, in capture order.
type pool struct {
	conns []*flow.Conn
	byEP  map[flow.Endpoint][]*flow.Conn
	used  map[*flow.Conn]bool
}

func newPool(conns []*flow.Conn, control map[*flow.Conn]bool) *pool {
	// control holds the connections as given, also when a control
	// connection is used the other way round.
	p := &pool{byEP: map[flow.Endpoint][]*flow.Conn{}, used: map[*flow.Conn]bool{}}
	for _, c := range conns {
		if c == nil || control[c] {
			continue
		}
		p.conns = append(p.conns, c)
	}
	sort.SliceStable(p.conns, func(i, j int) bool { return p.conns[i].ID < p.conns[j].ID })
	for _, c := range p.conns {
		p.byEP[c.Client] = append(p.byEP[c.Client], c)
		if c.Server != c.Client {
			p.byEP[c.Server] = append(p.byEP[c.Server], c)
		}
	}
	return p
}

// inWindow says whether data may belong to ctrl's session at all: it
// starts after the control connection and, when the capture says when the
// control connection ended, not after that.
func inWindow(ctrl, data *flow.Conn, after int) bool {
	if data.ID <= after || data.ID < ctrl.ID {
		return false
	}
	if ctrl.Frames.Last > 0 && data.Frames.First > 0 && data.Frames.First > ctrl.Frames.Last {
		return false
	}
	return true
}

func sameHosts(a, b *flow.Conn) bool {
	return (a.Client.Addr == b.Client.Addr && a.Server.Addr == b.Server.Addr) ||
		(a.Client.Addr == b.Server.Addr && a.Server.Addr == b.Client.Addr)
}

// wellKnown are ports whose connections are not FTP data even when they
// run between the same hosts at the same time.
var wellKnown = map[uint16]bool{21: true, 22: true, 23: true, 25: true, 53: true, 80: true, 110: true,
	143: true, 443: true, 465: true, 587: true, 993: true, 995: true, 3306: true, 5432: true}

// match finds each transfer's data connection. Transfers on one control
// connection happen one after the other, so each takes the first unused
// connection that fits and starts after the previous transfer's.
func (p *pool) match(s *session) {
	after := 0
	for _, t := range s.transfers {
		if c, how := p.find(t, after); c != nil {
			p.used[c] = true
			t.data, t.matchedBy = c, how
			after = c.ID
		}
	}
}

func (p *pool) find(t *transfer, after int) (*flow.Conn, string) {
	ctrl := t.ctrl
	if t.hasEP {
		for _, c := range p.byEP[t.ep] {
			if !p.used[c] && inWindow(ctrl, c, after) {
				return c, fmt.Sprintf("%s %s", t.epFrom, t.ep)
			}
		}
		// Behind NAT the announced address is not the one captured: the
		// port and the other host still fit.
		for _, c := range p.conns {
			if p.used[c] || !inWindow(ctrl, c, after) {
				continue
			}
			for _, pair := range [][2]flow.Endpoint{{c.Client, c.Server}, {c.Server, c.Client}} {
				if pair[0].Port == t.ep.Port && (pair[1].Addr == ctrl.Client.Addr || pair[1].Addr == ctrl.Server.Addr) {
					return c, fmt.Sprintf("port %d of the %s (announced address %s not seen: NAT?)", t.ep.Port, t.epFrom, t.ep.Addr)
				}
			}
		}
	}
	// No address to go by: the next connection between the same hosts.
	var first *flow.Conn
	for _, c := range p.conns {
		if p.used[c] || !inWindow(ctrl, c, after) || !sameHosts(ctrl, c) ||
			wellKnown[c.Server.Port] || wellKnown[c.Client.Port] {
			continue
		}
		if t.hasEP && c.Client.Port != t.ep.Port && c.Server.Port != t.ep.Port {
			// An announced port that nothing used: do not take another
			// connection's data for this one.
			continue
		}
		if t.mode == modeActive && !isDataPort(c, ctrl) {
			if first == nil {
				first = c
			}
			continue
		}
		return c, "timing (the next connection between the control connection's hosts)"
	}
	if first != nil {
		return first, "timing (the next connection between the control connection's hosts)"
	}
	return nil, ""
}

func hasPort(c *flow.Conn, port uint16) bool { return c.Client.Port == port || c.Server.Port == port }

// dataPort returns the port an active-mode server connects from: 20, or
// the control port minus one; 0 when c uses neither.
func dataPort(c, ctrl *flow.Conn) uint16 {
	for _, p := range []uint16{20, ctrl.Server.Port - 1} {
		if p > 0 && hasPort(c, p) {
			return p
		}
	}
	return 0
}

func isDataPort(c, ctrl *flow.Conn) bool { return dataPort(c, ctrl) != 0 }

// serverSide returns the data connection's endpoint on the FTP server.
func serverSide(t *transfer) flow.Endpoint {
	c, ctrl := t.data, t.ctrl
	other := func(e flow.Endpoint) flow.Endpoint {
		if e == c.Client {
			return c.Server
		}
		return c.Client
	}
	if t.hasEP {
		switch {
		case t.mode == modePassive && (t.ep == c.Client || t.ep == c.Server):
			return t.ep
		case t.mode == modeActive && (t.ep == c.Client || t.ep == c.Server):
			return other(t.ep)
		case t.mode == modePassive && t.ep.Port == c.Client.Port:
			return c.Client
		case t.mode == modePassive:
			return c.Server
		case t.ep.Port == c.Client.Port:
			return c.Server
		default:
			return c.Client
		}
	}
	switch {
	case t.mode != modePassive && isDataPort(c, ctrl):
		if c.Client.Port == dataPort(c, ctrl) {
			return c.Client
		}
		return c.Server
	case ctrl.Server.Addr != ctrl.Client.Addr && c.Client.Addr == ctrl.Server.Addr && c.Server.Addr == ctrl.Client.Addr:
		return c.Client
	case ctrl.Server.Addr != ctrl.Client.Addr && c.Server.Addr == ctrl.Server.Addr:
		return c.Server
	case t.mode == modeActive:
		return c.Client // the server connects to the client
	}
	return c.Server // passive: the client connects to the server
}

// halves returns the data connection's download (server → client) and
// upload (client → server) directions, nil when not captured.
func halves(t *transfer) (down, up *flow.Half) {
	c := t.data
	if serverSide(t) == c.Server {
		return c.ToClient, c.ToServer
	}
	return c.ToServer, c.ToClient
}
