package ftp

import (
	"net/netip"
	"strconv"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// parseHostPort reads "h1,h2,h3,h4,p1,p2" (PORT's argument, 227's text).
func parseHostPort(s string) (flow.Endpoint, bool) {
	f := strings.Split(strings.TrimSpace(s), ",")
	if len(f) != 6 {
		return flow.Endpoint{}, false
	}
	var n [6]byte
	for i, v := range f {
		x, err := strconv.ParseUint(strings.TrimSpace(v), 10, 8)
		if err != nil {
			return flow.Endpoint{}, false
		}
		n[i] = byte(x)
	}
	return flow.Endpoint{Addr: netip.AddrFrom4([4]byte(n[:4])), Port: uint16(n[4])<<8 | uint16(n[5])}, true
}

// parse227 finds the six numbers of "227 Entering Passive Mode
// (h1,h2,h3,h4,p1,p2)." with or without the parentheses.
func parse227(text string) (flow.Endpoint, bool) {
	if i := strings.IndexByte(text, '('); i >= 0 {
		if j := strings.IndexByte(text[i:], ')'); j > 0 {
			if ep, ok := parseHostPort(text[i+1 : i+j]); ok {
				return ep, true
			}
		}
	}
	// Some servers leave the parentheses out: take the last run of
	// digits and commas.
	end := len(text)
	for end > 0 && !isDigit(text[end-1]) {
		end--
	}
	start := end
	for start > 0 && (isDigit(text[start-1]) || text[start-1] == ',') {
		start--
	}
	return parseHostPort(text[start:end])
}

// parse229 reads the port of "229 Entering Extended Passive Mode
// (|||40000|)"; the delimiter may be any character.
func parse229(text string) (uint16, bool) {
	i := strings.IndexByte(text, '(')
	if i < 0 || len(text) < i+6 {
		return 0, false
	}
	s := text[i+1:]
	d := s[0]
	if s[1] != d || s[2] != d {
		return 0, false
	}
	s = s[3:]
	j := strings.IndexByte(s, d)
	if j <= 0 {
		return 0, false
	}
	p, err := strconv.ParseUint(s[:j], 10, 16)
	if err != nil || p == 0 {
		return 0, false
	}
	return uint16(p), true
}

// parseEPRT reads "|1|132.235.1.2|6275|" or "|2|::1|6275|".
func parseEPRT(arg string) (flow.Endpoint, bool) {
	if len(arg) < 7 {
		return flow.Endpoint{}, false
	}
	f := strings.Split(arg[1:], arg[:1])
	if len(f) < 3 {
		return flow.Endpoint{}, false
	}
	addr, err := netip.ParseAddr(f[1])
	if err != nil {
		return flow.Endpoint{}, false
	}
	p, err := strconv.ParseUint(f[2], 10, 16)
	if err != nil || p == 0 {
		return flow.Endpoint{}, false
	}
	return flow.Endpoint{Addr: addr.Unmap(), Port: uint16(p)}, true
}

// announce is what a 150 (or 125) reply says about a transfer.
type announce struct {
	name    string  // the file name, "" when the text has none
	size    int64   // "(N bytes)", -1 when absent
	kbytes  float64 // Pure-FTPd's "N kbytes to download", -1 when absent
	listing bool    // a directory listing
	upload  int     // 1 upload, -1 download, 0 unknown (from FileZilla's text)
}

// parse150 reads the 150 reply texts of vsftpd ("Opening BINARY mode
// data connection for secret.tar (10240 bytes)."), ProFTPD (the same,
// without the final dot, or without the size), Pure-FTPd ("Accepted data
// connection" "N kbytes to download"), FileZilla Server ("Opening data
// channel for file download from server of "/x"") and IIS.
func parse150(text string) announce {
	a := announce{size: -1, kbytes: -1}
	t := strings.TrimSpace(text)
	lower := proto.ASCIILower(t)
	switch {
	case strings.Contains(lower, "directory listing"), strings.Contains(lower, "file list"),
		strings.Contains(lower, "dir listing"), strings.Contains(lower, "mlsd"):
		a.listing = true
	}
	if strings.Contains(lower, "ok to send data") {
		a.upload = 1 // vsftpd's answer to STOR, APPE and STOU
	}
	if i := strings.Index(lower, "kbytes to download"); i > 0 {
		f := strings.Fields(t[:i])
		if len(f) > 0 {
			if k, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil && k >= 0 && k <= proto.MaxOffset/1024 {
				a.kbytes = k
			}
		}
	}
	if i := strings.Index(lower, " of \""); i >= 0 && strings.Contains(lower, "data channel for file") {
		s := t[i+5:]
		if j := strings.LastIndexByte(s, '"'); j >= 0 {
			a.name = s[:j]
		}
		switch {
		case strings.Contains(lower, "upload"):
			a.upload = 1
		case strings.Contains(lower, "download"):
			a.upload = -1
		}
		return a
	}
	i := strings.Index(lower, "connection for ")
	if i < 0 {
		return a
	}
	s := strings.TrimSuffix(t[i+len("connection for "):], ".")
	if j := strings.LastIndex(s, " bytes)"); j > 0 && strings.HasSuffix(s, " bytes)") {
		if k := strings.LastIndexByte(s[:j], '('); k >= 0 {
			if n, err := strconv.ParseInt(s[k+1:j], 10, 64); err == nil && n >= 0 && n <= proto.MaxOffset {
				a.size = n
				s = strings.TrimRight(s[:k], " ")
			}
		}
	}
	if a.listing || s == "" || strings.EqualFold(s, "file list") || strings.HasPrefix(s, "/bin/ls") {
		a.listing = true
		return a
	}
	a.name = s
	return a
}

// parseNumber returns the first run of digits in s.
func parseNumber(s string) (int64, bool) {
	i := strings.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' })
	if i < 0 {
		return 0, false
	}
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	n, err := strconv.ParseInt(s[i:j], 10, 64)
	return n, err == nil
}

// parse213 reads a SIZE reply ("213 1048576"). An MDTM reply
// (YYYYMMDDHHMMSS) is not a size.
func parse213(text string) (int64, bool) {
	f := strings.Fields(text)
	if len(f) != 1 {
		return 0, false
	}
	s := f[0]
	if len(s) >= 14 && (strings.HasPrefix(s, "19") || strings.HasPrefix(s, "20")) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > proto.MaxOffset {
		return 0, false
	}
	return n, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
