package pcap

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"
)

// pcapng block types.
const (
	blockSHB       = 0x0a0d0d0a
	blockIDB       = 0x00000001
	blockOPB       = 0x00000002 // obsolete Packet Block
	blockSPB       = 0x00000003
	blockNRB       = 0x00000004
	blockISB       = 0x00000005
	blockEPB       = 0x00000006
	blockJournal   = 0x00000009
	blockDSB       = 0x0000000a
	blockCustom    = 0x00000bad
	blockCustomNoC = 0x40000bad
	byteOrderMagic = 0x1a2b3c4d
)

// knownBlock says whether t is a block type the reader expects; others
// are skipped and tallied.
func knownBlock(t uint32) bool {
	switch t {
	case blockSHB, blockIDB, blockOPB, blockSPB, blockNRB, blockISB, blockEPB, blockJournal, blockDSB, blockCustom, blockCustomNoC:
		return true
	}
	return false
}

// ngState is the current section of a pcapng file.
type ngState struct {
	order   binary.ByteOrder
	section int // 0-based count of section headers seen
	ifaces  []ngIface
	skip    bool // the section's version is not understood: skip to the next
	// ifacesFull says the section described more than maxInterfaces.
	ifacesFull bool
}

// ngIface is one Interface Description Block.
type ngIface struct {
	link    uint32
	snaplen uint32
	units   uint64 // timestamp units per second (if_tsresol)
	offset  int64  // seconds added to every timestamp (if_tsoffset)
}

func (i *ngIface) time(ts uint64) time.Time {
	sec, frac := ts/i.units, ts%i.units
	hi, lo := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(hi, lo, i.units) // hi < units because frac < units
	return time.Unix(int64(sec)+i.offset, int64(ns)).UTC()
}

// openPcapng reads the first Section Header Block; its byte order and
// version must be understood for the file to be read at all.
func (r *Reader) openPcapng() error {
	h, _ := r.src.peek(28)
	if len(h) < 28 {
		if e := r.src.ioError(); e != nil {
			return fmt.Errorf("reading the pcapng section header: %w", e)
		}
		return fmt.Errorf("the pcapng section header is truncated (%d of at least 28 bytes)", len(h))
	}
	if ngOrder(h[8:12]) == nil {
		return fmt.Errorf("the pcapng section header's byte-order magic is %x, not 1a2b3c4d in either order", h[8:12])
	}
	r.stats.Format = "pcapng"
	r.ngs.section = -1
	return nil
}

// ngOrder returns the byte order whose byte-order magic b is, or nil.
func ngOrder(b []byte) binary.ByteOrder {
	switch {
	case binary.LittleEndian.Uint32(b) == byteOrderMagic:
		return binary.LittleEndian
	case binary.BigEndian.Uint32(b) == byteOrderMagic:
		return binary.BigEndian
	}
	return nil
}

// nextPcapng reads blocks until a packet block; false at the end of what
// can be read.
func (r *Reader) nextPcapng() (frame, bool) {
	s := &r.ngs
	for {
		h, _ := r.src.peek(12)
		if len(h) == 0 {
			return frame{}, false
		}
		at := r.src.off
		if len(h) < 12 {
			r.warn.add(0, "capture truncated in a block header at offset %d (read %d of at least 12 bytes): the rest of the file is lost", at, len(h))
			r.src.discard(len(h))
			return frame{}, false
		}
		order := s.order
		if binary.LittleEndian.Uint32(h[0:4]) == blockSHB {
			if order = ngOrder(h[8:12]); order == nil {
				if !r.resyncPcapng(at, "a section header with a bad byte-order magic") {
					return frame{}, false
				}
				continue
			}
		}
		typ, length := order.Uint32(h[0:4]), order.Uint32(h[4:8])
		if length < 12 || length%4 != 0 || length > maxBlock {
			if !r.resyncPcapng(at, fmt.Sprintf("a block of type 0x%08x with an impossible length of %d bytes", typ, length)) {
				return frame{}, false
			}
			continue
		}
		b, _ := r.src.peek(int(length))
		if len(b) < int(length) {
			return r.truncatedBlock(typ, b, int(length))
		}
		if tail := order.Uint32(b[length-4:]); tail != length {
			if !r.resyncPcapng(at, fmt.Sprintf("a block of type 0x%08x whose trailing length %d differs from its leading length %d", typ, tail, length)) {
				return frame{}, false
			}
			continue
		}
		body := b[8 : length-4]
		if typ == blockSHB {
			r.sectionHeader(order, body)
			r.src.discard(int(length))
			continue
		}
		if s.skip {
			r.src.discard(int(length))
			continue
		}
		switch typ {
		case blockIDB:
			r.interfaceBlock(body)
		case blockEPB, blockOPB, blockSPB:
			fr, ok := r.packetBlock(typ, body, false)
			r.src.discard(int(length))
			if ok {
				return fr, true
			}
			continue
		default:
			if !knownBlock(typ) {
				r.unknownBlocks.add(typ)
			}
		}
		r.src.discard(int(length))
	}
}

// truncatedBlock ends the reading at a block the file cuts short; a
// packet block's frame is decoded as far as it goes.
func (r *Reader) truncatedBlock(typ uint32, b []byte, length int) (frame, bool) {
	r.src.discard(len(b))
	if !r.ngs.skip && (typ == blockEPB || typ == blockOPB || typ == blockSPB) && len(b) > 8 {
		num := r.stats.Frames + 1
		fr, ok := r.packetBlock(typ, b[8:], true)
		if ok {
			if len(fr.data) < fr.capLen {
				r.warn.add(num, "capture truncated in the frame's data (read %d of %d bytes): the rest of the file is lost", len(fr.data), fr.capLen)
			} else {
				r.warn.add(num, "capture truncated in the frame's block after its data (read %d of %d bytes): the rest of the file is lost", len(b), length)
			}
			return fr, true
		}
		r.warn.add(num, "capture truncated in the frame's block (read %d of %d bytes): the rest of the file is lost", len(b), length)
		return frame{}, false
	}
	r.warn.add(0, "capture truncated in a block of type 0x%08x (read %d of %d bytes): the rest of the file is lost", typ, len(b), length)
	return frame{}, false
}

// resyncPcapng skips a corrupt block to the next plausible one.
func (r *Reader) resyncPcapng(at int64, what string) bool {
	skipped, ok := r.src.resync(r.ngs.candidate, resyncLimit)
	if !ok {
		r.warn.add(0, "corrupt pcapng block at offset %d (%s) and no plausible block in the %d bytes after it: the rest of the file is lost", at, what, skipped)
		return false
	}
	r.warn.add(0, "corrupt pcapng block at offset %d (%s): skipped %d bytes to the next plausible block; the frames in them are lost and later frame numbers may differ from Wireshark's", at, what, skipped)
	return true
}

// candidate judges whether b starts a block: a known type, a sane length,
// and the same length at the block's end.
func (s *ngState) candidate(b []byte, atEOF bool) verdict {
	if len(b) < 12 {
		if atEOF {
			return reject
		}
		return needMore
	}
	order := s.order
	if binary.LittleEndian.Uint32(b) == blockSHB {
		if order = ngOrder(b[8:12]); order == nil {
			return reject
		}
	}
	if order == nil {
		return reject
	}
	typ, length := order.Uint32(b[0:4]), order.Uint32(b[4:8])
	if !knownBlock(typ) || length < 12 || length%4 != 0 || length > maxBlock {
		return reject
	}
	if len(b) < int(length) {
		if atEOF {
			return reject
		}
		return needMore
	}
	if order.Uint32(b[length-4:]) != length {
		return reject
	}
	return accept
}

// sectionHeader starts a new section: interfaces are numbered afresh.
func (r *Reader) sectionHeader(order binary.ByteOrder, body []byte) {
	s := &r.ngs
	s.order = order
	s.section++
	s.ifaces = s.ifaces[:0]
	s.skip, s.ifacesFull = false, false
	if len(body) < 4+12 {
		r.warn.add(0, "pcapng section header %d is too short (%d bytes): its blocks are skipped", s.section+1, len(body)+12)
		s.skip = true
		return
	}
	if major := order.Uint16(body[4:6]); major != 1 {
		r.warn.add(0, "pcapng section %d has version %d.%d, which this reader does not know: its blocks are skipped", s.section+1, major, order.Uint16(body[6:8]))
		s.skip = true
	}
}

// maxInterfaces bounds the interfaces of a section (real captures have a
// few): more are ignored, and their frames counted as naming no interface.
const maxInterfaces = 4096

// interfaceBlock adds an interface to the section.
func (r *Reader) interfaceBlock(body []byte) {
	s := &r.ngs
	if len(s.ifaces) >= maxInterfaces {
		if !s.ifacesFull {
			r.warn.add(0, "pcapng section %d describes more than %d interfaces: the rest are ignored", s.section+1, maxInterfaces)
			s.ifacesFull = true
		}
		return
	}
	iface := ngIface{units: 1e6}
	if len(body) < 8 {
		r.warn.add(0, "pcapng interface %d of section %d has a %d-byte description (8 needed): its frames are skipped", len(s.ifaces), s.section+1, len(body))
		iface.link = 0x10000 // an impossible link type: its frames are tallied as unsupported
		s.ifaces = append(s.ifaces, iface)
		return
	}
	iface.link = uint32(s.order.Uint16(body[0:2]))
	iface.snaplen = s.order.Uint32(body[4:8])
	for opts := body[8:]; len(opts) >= 4; {
		code, n := s.order.Uint16(opts[0:2]), int(s.order.Uint16(opts[2:4]))
		if code == 0 || 4+n > len(opts) {
			break
		}
		v := opts[4 : 4+n]
		switch {
		case code == 9 && n >= 1: // if_tsresol
			if u, ok := tsUnits(v[0]); ok {
				iface.units = u
			} else {
				r.warn.add(0, "pcapng interface %d of section %d has an unusable timestamp resolution 0x%02x: its times are read as microseconds", len(s.ifaces), s.section+1, v[0])
			}
		case code == 14 && n >= 8: // if_tsoffset
			iface.offset = int64(s.order.Uint64(v))
		}
		opts = opts[min(len(opts), 4+(n+3)&^3):]
	}
	s.ifaces = append(s.ifaces, iface)
}

// tsUnits converts an if_tsresol byte to units per second.
func tsUnits(v byte) (uint64, bool) {
	e := uint64(v & 0x7f)
	if v&0x80 != 0 {
		if e > 63 {
			return 0, false
		}
		return 1 << e, true
	}
	if e > 19 { // 10^20 overflows
		return 0, false
	}
	u := uint64(1)
	for range e {
		u *= 10
	}
	return u, true
}

// packetBlock reads an Enhanced, Simple or obsolete Packet Block's body;
// partial says the block is cut off, so the data may end early. It
// returns false for a frame it skips (counted and explained).
func (r *Reader) packetBlock(typ uint32, body []byte, partial bool) (frame, bool) {
	s := &r.ngs
	num := r.stats.Frames + 1
	var ifid int
	var ts uint64
	var caplen, wirelen uint32
	var data []byte
	switch typ {
	case blockSPB:
		if len(body) < 4 {
			return frame{}, false
		}
		wirelen = s.order.Uint32(body[0:4])
		data = body[4:]
		caplen = wirelen
		if len(s.ifaces) > 0 && s.ifaces[0].snaplen > 0 {
			caplen = min(caplen, s.ifaces[0].snaplen)
		}
		if !partial {
			caplen = min(caplen, uint32(len(data)))
		}
	default:
		if len(body) < 20 {
			if !partial {
				r.countFrame()
				r.skip(SkipMalformed)
				r.warn.add(num, "the packet block is %d bytes, too short for its header: skipped", len(body)+12)
			}
			return frame{}, false
		}
		if typ == blockEPB {
			ifid = int(s.order.Uint32(body[0:4]))
		} else {
			ifid = int(s.order.Uint16(body[0:2]))
		}
		ts = uint64(s.order.Uint32(body[4:8]))<<32 | uint64(s.order.Uint32(body[8:12]))
		caplen, wirelen = s.order.Uint32(body[12:16]), s.order.Uint32(body[16:20])
		data = body[20:]
		if uint64(caplen) > uint64(len(data)) && !partial {
			r.countFrame()
			r.skip(SkipMalformed)
			r.warn.add(num, "the packet block claims %d captured bytes but holds %d: skipped", caplen, len(data))
			return frame{}, false
		}
	}
	data = data[:min(uint64(caplen), uint64(len(data)))]
	if ifid >= len(s.ifaces) {
		r.countFrame()
		r.skip(SkipInterface)
		r.badIfaces.add(linkKey{section: s.section, iface: ifid})
		return frame{}, false
	}
	iface := &s.ifaces[ifid]
	fr := frame{
		data:    data,
		capLen:  int(caplen),
		wireLen: int(max(wirelen, caplen)),
		link:    iface.link,
		key:     linkKey{section: s.section, iface: ifid, link: iface.link},
	}
	if typ != blockSPB {
		fr.time = iface.time(ts)
	}
	return fr, true
}

// countFrame counts a packet record that never reaches decoding.
func (r *Reader) countFrame() { r.stats.Frames++ }
