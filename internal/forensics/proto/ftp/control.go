package ftp

import (
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// Bounds on what one control connection may hold.
const (
	maxLine     = 8192
	maxCommands = 200000
	maxReplies  = 200000
	sniffBytes  = 4096
)

type command struct {
	verb, arg  string
	start, end int64
}

// event is one exchange on the control connection: a command and its
// replies (preliminary 1xx ones, then the final one). With only one side
// captured, cmd is nil or replies empty.
type event struct {
	cmd     *command
	replies []proto.Reply
}

// final is the event's last reply of code ≥ 200, or nil.
func (e event) final() *proto.Reply {
	for i := len(e.replies) - 1; i >= 0; i-- {
		if e.replies[i].Code >= 200 {
			return &e.replies[i]
		}
	}
	return nil
}

// has returns the first reply with one of the codes.
func (e event) has(codes ...int) *proto.Reply {
	for i := range e.replies {
		for _, c := range codes {
			if e.replies[i].Code == c {
				return &e.replies[i]
			}
		}
	}
	return nil
}

var ftpVerbs = map[string]bool{
	"USER": true, "PASS": true, "ACCT": true, "CWD": true, "XCWD": true, "CDUP": true, "XCUP": true,
	"QUIT": true, "REIN": true, "PORT": true, "PASV": true, "EPRT": true, "EPSV": true, "TYPE": true,
	"STRU": true, "MODE": true, "RETR": true, "STOR": true, "STOU": true, "APPE": true, "ALLO": true,
	"REST": true, "RNFR": true, "RNTO": true, "ABOR": true, "DELE": true, "RMD": true, "XRMD": true,
	"MKD": true, "XMKD": true, "PWD": true, "XPWD": true, "LIST": true, "NLST": true, "SITE": true,
	"SYST": true, "STAT": true, "HELP": true, "NOOP": true, "FEAT": true, "OPTS": true, "SIZE": true,
	"MDTM": true, "MLSD": true, "MLST": true, "AUTH": true, "PBSZ": true, "PROT": true, "CCC": true,
	"LPRT": true, "LPSV": true, "HOST": true, "LANG": true, "CLNT": true, "MFMT": true,
}

// strongVerbs are FTP commands no other line protocol here uses.
var strongVerbs = map[string]bool{
	"USER": true, "PASS": true, "RETR": true, "STOR": true, "PASV": true, "EPSV": true, "PORT": true,
	"EPRT": true, "TYPE": true, "CWD": true, "PWD": true, "LIST": true, "NLST": true, "SIZE": true,
	"REST": true, "MLSD": true, "SYST": true, "APPE": true, "STOU": true, "XPWD": true, "CDUP": true,
}

// parseCommand reads "VERB arg"; Telnet IAC bytes before ABOR are skipped.
func parseCommand(b []byte) (verb, arg string, ok bool) {
	for len(b) > 0 && b[0] >= 0x80 {
		b = b[1:]
	}
	s := string(b)
	v, a, _ := strings.Cut(s, " ")
	if len(v) < 3 || len(v) > 4 {
		return "", "", false
	}
	for i := 0; i < len(v); i++ {
		c := v[i] | 0x20
		if c < 'a' || c > 'z' {
			return "", "", false
		}
	}
	return strings.ToUpper(v), a, true
}

// isControl tells an FTP control connection by content: the server's
// replies ("220 (vsFTPd 3.0.3)", 331, 227, 150, …) or the client's
// commands (USER, PASS, RETR, …), and not SMTP's (EHLO, 354).
func isControl(c *flow.Conn) bool {
	ftp, other := 0, 0
	if h := c.ToClient; h != nil && h.Size > 0 {
		// Replies, multi-line ones whole (a banner's free text between
		// "220-" and "220 " counts as part of its reply).
		rr := proto.NewReplyReader(proto.NewLineReader(h.Data, 0, min(h.Size, sniffBytes), 512))
		replies := 0
		seen := map[int]bool{}
		for replies < 40 {
			r, ok := rr.Next()
			if !ok {
				break
			}
			replies++
			text := strings.ToUpper(r.Text())
			if replies == 1 && r.Code == 220 {
				switch {
				case strings.Contains(text, "FTP"):
					ftp += 2
				case strings.Contains(text, "SMTP"), strings.Contains(text, "LMTP"):
					other += 2
				}
			}
			if seen[r.Code] {
				continue
			}
			seen[r.Code] = true
			switch r.Code {
			case 331, 332, 230, 227, 229, 150, 125, 226, 257, 215, 350, 213:
				ftp++
			case 354, 334:
				other++
			}
		}
		if replies == 0 || rr.Junk > replies {
			ftp = 0
		}
	}
	if h := c.ToServer; h != nil && h.Size > 0 {
		lr := proto.NewLineReader(h.Data, 0, min(h.Size, sniffBytes), 512)
		lines, cmds := 0, 0
		cftp := 0
		for lines < 40 {
			ln, err := lr.Next()
			if err != nil {
				break
			}
			lines++
			verb, arg, ok := parseCommand(ln.Text)
			if !ok {
				continue
			}
			switch {
			case strongVerbs[verb]:
				cftp++
				cmds++
			case ftpVerbs[verb]:
				cmds++
			case verb == "EHLO", verb == "HELO", verb == "LHLO", verb == "DATA", verb == "BDAT",
				verb == "MAIL" && strings.HasPrefix(strings.ToUpper(arg), "FROM:"),
				verb == "RCPT" && strings.HasPrefix(strings.ToUpper(arg), "TO:"):
				other += 2
			}
		}
		if cmds*2 >= lines {
			ftp += cftp
		}
	}
	return ftp >= 2 && ftp > other
}

func readCommands(h *flow.Half) []command {
	if h == nil {
		return nil
	}
	lr := proto.HalfLines(h, maxLine)
	var out []command
	for len(out) < maxCommands {
		ln, err := lr.Next()
		if err != nil {
			break
		}
		verb, arg, ok := parseCommand(ln.Text)
		if !ok || !ftpVerbs[verb] {
			continue
		}
		out = append(out, command{verb: verb, arg: arg, start: ln.Start, end: ln.End})
	}
	return out
}

func readReplies(h *flow.Half) []proto.Reply {
	if h == nil {
		return nil
	}
	rr := proto.NewReplyReader(proto.HalfLines(h, maxLine))
	var out []proto.Reply
	for len(out) < maxReplies {
		r, ok := rr.Next()
		if !ok {
			break
		}
		out = append(out, r)
	}
	return out
}

// fits says whether a reply code can answer the command; only the codes
// that answer one kind of command are checked.
func fits(verb string, code int) bool {
	switch code {
	case 227:
		return verb == "PASV"
	case 229:
		return verb == "EPSV"
	case 150, 125:
		return isTransfer(verb)
	case 350:
		return verb == "REST" || verb == "RNFR"
	case 331, 332:
		return verb == "USER"
	}
	return true
}

func isTransfer(verb string) bool {
	switch verb {
	case "RETR", "STOR", "STOU", "APPE", "LIST", "NLST", "MLSD":
		return true
	}
	return false
}

// pair matches commands with replies in order: FTP answers each command
// with zero or more 1xx replies and one final one. A reply that can only
// answer a later command (a 227 while the current command is TYPE: the
// client's segment with TYPE's reply was lost) skips ahead.
func pair(cmds []command, replies []proto.Reply) []event {
	var evs []event
	r := 0
	// The greeting (and a 120 before it).
	for r < len(replies) && (replies[r].Code == 220 || replies[r].Code == 120) {
		evs = append(evs, event{replies: replies[r : r+1]})
		r++
	}
	for i := 0; i < len(cmds); i++ {
		ev := event{cmd: &cmds[i]}
		if r < len(replies) && !fits(cmds[i].verb, replies[r].Code) {
			if j := ahead(cmds, i, replies[r].Code); j > i {
				for ; i < j; i++ {
					evs = append(evs, event{cmd: &cmds[i]})
				}
				ev = event{cmd: &cmds[i]}
			}
		}
		for r < len(replies) {
			rep := replies[r]
			ev.replies = append(ev.replies, rep)
			r++
			if rep.Code >= 200 {
				break
			}
		}
		evs = append(evs, ev)
	}
	// Replies nobody asked for (the client's side ended first).
	for ; r < len(replies); r++ {
		evs = append(evs, event{replies: replies[r : r+1]})
	}
	return evs
}

func ahead(cmds []command, i, code int) int {
	for j := i + 1; j < len(cmds) && j <= i+4; j++ {
		if fits(cmds[j].verb, code) {
			return j
		}
	}
	return i
}

// groupReplies makes events out of replies alone (the client's side was
// not captured): 1xx replies join the final one that follows.
func groupReplies(replies []proto.Reply) []event {
	var evs []event
	start := 0
	for i, r := range replies {
		if r.Code >= 200 {
			evs = append(evs, event{replies: replies[start : i+1]})
			start = i + 1
		}
	}
	if start < len(replies) {
		evs = append(evs, event{replies: replies[start:]})
	}
	return evs
}

// events reads a control connection's exchanges from whatever sides
// were captured.
func events(c *flow.Conn) []event {
	cmds := readCommands(c.ToServer)
	replies := readReplies(c.ToClient)
	switch {
	case len(cmds) == 0:
		return groupReplies(replies)
	case c.ToClient == nil:
		evs := make([]event, len(cmds))
		for i := range cmds {
			evs[i] = event{cmd: &cmds[i]}
		}
		return evs
	}
	return pair(cmds, replies)
}
