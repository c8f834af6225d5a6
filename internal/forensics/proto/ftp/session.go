package ftp

import (
	"fmt"
	"strconv"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

type mode int

const (
	modeUnknown mode = iota
	modePassive
	modeActive
)

func (m mode) String() string {
	switch m {
	case modePassive:
		return "passive"
	case modeActive:
		return "active"
	}
	return "unknown mode"
}

// transfer is one RETR, STOR, APPE, STOU, LIST, NLST or MLSD, or a 150
// reply standing for one when the client's side was not captured.
type transfer struct {
	ctrl     *flow.Conn
	seq      int    // 1-based order on the control connection
	verb     string // "" when only the server's replies were captured
	name     string
	nameFrom string
	listing  bool
	upload   int // 1 upload, -1 download, 0 unknown
	rest     int64
	ann      announce
	size213  int64 // the SIZE reply for this file, -1 when none
	mode     mode
	ep       flow.Endpoint // the listening side of the data connection
	hasEP    bool
	epFrom   string
	ascii    bool
	final    *proto.Reply // the reply that ended the transfer, nil when not seen
	replies  bool         // the server's side was captured

	data      *flow.Conn // the matched data connection
	matchedBy string
}

func (t *transfer) label() string {
	what := t.verb
	if what == "" {
		what = "transfer"
	}
	if t.name != "" {
		what += " " + t.name
	}
	return fmt.Sprintf("%s (control conn %d, transfer %d)", what, t.ctrl.ID, t.seq)
}

// session walks one control connection's events.
type session struct {
	ctrl      *flow.Conn
	flavor    string // "vsftpd", "proftpd", "pure-ftpd", "" unknown
	transfers []*transfer
	warnings  []flow.Warning
}

func (s *session) run(evs []event) {
	var (
		pendMode mode
		pendEP   flow.Endpoint
		hasEP    bool
		epFrom   string
		rest     int64
		ascii    bool
		sizes    = map[string]int64{}
		lastSize = int64(-1)
	)
	setEP := func(m mode, ep flow.Endpoint, ok bool, from string) {
		pendMode, pendEP, hasEP, epFrom = m, ep, ok, from
	}
	for _, e := range evs {
		verb, arg := "", ""
		if e.cmd != nil {
			verb, arg = e.cmd.verb, e.cmd.arg
		}
		fin := e.final()
		accepted := fin == nil || fin.Code < 400
		text := ""
		if fin != nil {
			text = fin.Text()
		}
		switch {
		case e.cmd == nil && len(e.replies) > 0 && e.replies[0].Code == 220 && s.flavor == "" && len(s.transfers) == 0:
			s.flavor = flavorOf(e.replies[0].Text())
		case verb == "PASV" || (verb == "" && e.has(227) != nil):
			if r := e.has(227); r != nil {
				if ep, ok := parse227(r.Text()); ok {
					if !ep.Addr.IsValid() || ep.Addr.IsUnspecified() {
						ep.Addr = s.ctrl.Server.Addr
					}
					setEP(modePassive, ep, true, "227 reply")
				}
			} else if accepted {
				setEP(modePassive, flow.Endpoint{}, false, "")
			}
		case verb == "EPSV" || (verb == "" && e.has(229) != nil):
			if r := e.has(229); r != nil {
				if p, ok := parse229(r.Text()); ok {
					setEP(modePassive, flow.Endpoint{Addr: s.ctrl.Server.Addr, Port: p}, true, "229 reply")
				}
			} else if accepted && !strings.EqualFold(arg, "ALL") {
				setEP(modePassive, flow.Endpoint{}, false, "")
			}
		case verb == "PORT":
			if ep, ok := parseHostPort(arg); ok && accepted {
				setEP(modeActive, ep, true, "PORT command")
			}
		case verb == "EPRT":
			if ep, ok := parseEPRT(arg); ok && accepted {
				setEP(modeActive, ep, true, "EPRT command")
			}
		case verb == "" && fin != nil && fin.Code == 200 &&
			(strings.Contains(strings.ToUpper(text), "PORT") || strings.Contains(strings.ToUpper(text), "EPRT")):
			setEP(modeActive, flow.Endpoint{}, false, "")
		case verb == "REST":
			if n, err := strconv.ParseInt(strings.TrimSpace(arg), 10, 64); err == nil && n >= 0 && accepted {
				rest = s.restAt(n)
			}
		case verb == "" && e.has(350) != nil:
			t := e.has(350).Text()
			if n, ok := parseNumber(t); ok && strings.Contains(strings.ToLower(t), "rest") {
				rest = s.restAt(n)
			}
		case verb == "TYPE":
			if accepted {
				ascii = strings.HasPrefix(strings.ToUpper(strings.TrimSpace(arg)), "A")
			}
		case verb == "" && fin != nil && fin.Code == 200 && typeReply(text) != 0:
			ascii = typeReply(text) > 0
		case verb == "SIZE":
			if r := e.has(213); r != nil {
				if n, ok := parse213(r.Text()); ok {
					sizes[arg], lastSize = n, n
				}
			}
		case verb == "" && e.has(213) != nil:
			if n, ok := parse213(e.has(213).Text()); ok {
				lastSize = n
			}
		case (verb == "AUTH" || verb == "") && e.has(234) != nil:
			s.warnings = append(s.warnings, flow.Warning{Message: fmt.Sprintf(
				"FTP control conn %d: AUTH TLS accepted (234): the rest of the session is encrypted and was not read", s.ctrl.ID)})
			return
		case isTransfer(verb) || (verb == "" && e.has(150, 125) != nil):
			prelim := e.has(150, 125)
			if e.cmd != nil && prelim == nil && fin != nil {
				// Refused before any data connection (550 no such file).
				rest = 0
				continue
			}
			t := &transfer{
				ctrl: s.ctrl, seq: len(s.transfers) + 1, verb: verb, rest: rest,
				ann: announce{size: -1, kbytes: -1}, size213: -1,
				mode: pendMode, ep: pendEP, hasEP: hasEP, epFrom: epFrom, ascii: ascii,
				replies: s.ctrl.ToClient != nil,
			}
			if prelim != nil {
				t.ann = parse150(prelim.Text())
			}
			if fin != nil && fin != prelim {
				t.final = fin
			}
			s.describe(t, arg)
			if n, ok := sizes[t.name]; ok && t.name != "" {
				t.size213 = n
			} else if verb == "" && lastSize >= 0 {
				t.size213 = lastSize
			}
			s.transfers = append(s.transfers, t)
			rest, lastSize = 0, -1
			setEP(modeUnknown, flow.Endpoint{}, false, "")
		case verb == "" && fin != nil && len(s.transfers) > 0 && s.transfers[len(s.transfers)-1].final == nil &&
			(fin.Code == 226 || fin.Code == 250 || fin.Code == 426 || fin.Code == 451):
			s.transfers[len(s.transfers)-1].final = fin
		}
	}
}

// restAt returns a REST offset, or 0 (with a warning) for one past
// proto.MaxOffset.
func (s *session) restAt(n int64) int64 {
	if n <= proto.MaxOffset {
		return n
	}
	s.warnings = append(s.warnings, flow.Warning{Message: fmt.Sprintf(
		"FTP control conn %d: REST %d is beyond any real file; ignored", s.ctrl.ID, n)})
	return 0
}

// describe fills the transfer's name and direction from the command or
// the 150 reply.
func (s *session) describe(t *transfer, arg string) {
	switch t.verb {
	case "RETR":
		t.name, t.nameFrom, t.upload = arg, "RETR", -1
	case "STOR", "APPE":
		t.name, t.nameFrom, t.upload = arg, t.verb, 1
	case "STOU":
		t.upload = 1
		if t.ann.name != "" {
			t.name, t.nameFrom = t.ann.name, "150 reply"
		}
	case "LIST", "NLST", "MLSD":
		t.listing, t.upload = true, -1
	case "":
		t.listing, t.upload = t.ann.listing, t.ann.upload
		if t.ann.name != "" {
			t.name, t.nameFrom = t.ann.name, "150 reply"
		}
	}
}

func flavorOf(greeting string) string {
	g := strings.ToLower(greeting)
	switch {
	case strings.Contains(g, "vsftpd"):
		return "vsftpd"
	case strings.Contains(g, "proftpd"):
		return "proftpd"
	case strings.Contains(g, "pure-ftpd"):
		return "pure-ftpd"
	}
	return ""
}

// typeReply reads the 200 reply to TYPE: 1 ASCII, -1 binary, 0 not a
// TYPE reply (vsftpd "Switching to ASCII mode.", ProFTPD "Type set to
// I", Pure-FTPd "TYPE is now 8-bit binary").
func typeReply(text string) int {
	t := strings.ToLower(text)
	if !strings.Contains(t, "type") && !strings.Contains(t, "mode") {
		return 0
	}
	switch {
	case strings.Contains(t, "ascii"), strings.HasSuffix(t, "type set to a"), strings.Contains(t, "type set to a "):
		return 1
	case strings.Contains(t, "binary"), strings.Contains(t, "type set to i"), strings.Contains(t, "8-bit"):
		return -1
	}
	return 0
}
