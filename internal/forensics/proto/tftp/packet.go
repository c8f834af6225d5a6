package tftp

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"

	"noops/internal/forensics/proto"
)

// Opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// maxBlockSize is RFC 2348's largest blksize.
const maxBlockSize = 65464

type packet struct {
	op      uint16
	block   uint16 // DATA, ACK; the error code for ERROR
	payload []byte // DATA's bytes
	text    string // ERROR's message

	// RRQ, WRQ, OACK
	name, mode string
	opts       map[string]string
}

// parse reads one TFTP packet; ok is false for anything that is not one.
func parse(p []byte) (packet, bool) {
	if len(p) < 2 {
		return packet{}, false
	}
	pk := packet{op: binary.BigEndian.Uint16(p)}
	switch pk.op {
	case opRRQ, opWRQ:
		f := strings.Split(string(p[2:]), "\x00")
		if len(f) < 3 || f[0] == "" || f[len(f)-1] != "" {
			return packet{}, false
		}
		pk.name, pk.mode = f[0], proto.ASCIILower(f[1])
		switch pk.mode {
		case "octet", "netascii", "mail":
		default:
			return packet{}, false
		}
		pk.opts = options(f[2 : len(f)-1])
	case opDATA:
		if len(p) < 4 || len(p)-4 > maxBlockSize {
			return packet{}, false
		}
		pk.block, pk.payload = binary.BigEndian.Uint16(p[2:]), p[4:]
	case opACK:
		if len(p) != 4 {
			return packet{}, false
		}
		pk.block = binary.BigEndian.Uint16(p[2:])
	case opERROR:
		if len(p) < 5 || p[len(p)-1] != 0 {
			return packet{}, false
		}
		pk.block = binary.BigEndian.Uint16(p[2:])
		pk.text = string(bytes.TrimRight(p[4:], "\x00"))
	case opOACK:
		f := strings.Split(string(p[2:]), "\x00")
		if len(f) < 1 || f[len(f)-1] != "" {
			return packet{}, false
		}
		pk.opts = options(f[:len(f)-1])
	default:
		return packet{}, false
	}
	return pk, true
}

// options reads RFC 2347 "name\0value\0" pairs, names lower-cased.
func options(f []string) map[string]string {
	if len(f) < 2 {
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(f); i += 2 {
		m[proto.ASCIILower(f[i])] = f[i+1]
	}
	return m
}

// intOpt reads a numeric option, -1 when absent or not a number.
func intOpt(opts map[string]string, name string, lo, hi int64) int64 {
	v, ok := opts[name]
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return -1
	}
	return n
}
