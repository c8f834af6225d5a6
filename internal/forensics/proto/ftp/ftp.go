package ftp

import (
	"sort"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// Extract finds the FTP control connections among conns by their content,
// on any port, matches the data connections to the transfers they
// announce and returns one object per file (a file sent in several
// pieces after REST is one object) and per directory listing, with
// warnings for transfers whose bytes are not in the capture.
//
// The objects read from the data connections' storage: close conns only
// after the objects are consumed.
func Extract(conns []*flow.Conn) (objs []*flow.Object, warnings []flow.Warning) {
	control := map[*flow.Conn]bool{}
	var ctrls []*flow.Conn
	for _, c := range conns {
		if c == nil {
			continue
		}
		switch {
		case isControl(c):
			control[c] = true
			ctrls = append(ctrls, c)
		case isControl(proto.Swapped(c)):
			// No SYN, and the server on the higher port.
			control[c] = true
			ctrls = append(ctrls, proto.Swapped(c))
		}
	}
	if len(ctrls) == 0 {
		return nil, nil
	}
	sort.SliceStable(ctrls, func(i, j int) bool { return ctrls[i].ID < ctrls[j].ID })
	p := newPool(conns, control)
	sessions := make([]*session, 0, len(ctrls))
	for _, c := range ctrls {
		s := &session{ctrl: c}
		s.run(events(c))
		warnings = append(warnings, proto.GapWarnings("FTP control", c, c.ToClient)...)
		warnings = append(warnings, proto.GapWarnings("FTP control", c, c.ToServer)...)
		warnings = append(warnings, s.warnings...)
		p.match(s)
		sessions = append(sessions, s)
	}
	objs, w := build(sessions)
	return objs, append(warnings, w...)
}
