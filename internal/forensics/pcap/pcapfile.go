package pcap

import (
	"encoding/binary"
	"fmt"
	"time"
)

// pcapState is what the classic pcap header says about every record.
type pcapState struct {
	order     binary.ByteOrder
	nano      bool   // nanosecond timestamps
	hdrLen    int    // record header: 16, or 24 in the modified format
	snaplen   uint32 // as the header says (0 read as the maximum)
	link      uint32 // link type, the FCS bits masked off
	maxRecord int    // the longest record taken as genuine
	lastSec   uint32 // seconds of the last good record, to judge candidates when resyncing
	haveLast  bool
}

const (
	pcapFileHeaderLen = 24
	maxSnaplen        = 262144   // libpcap's MAXIMUM_SNAPLEN
	maxBlock          = 64 << 20 // the longest record or block read; longer is corruption
	resyncLimit       = 64 << 20 // how far to scan for the next record after corruption
)

// openPcap reads the 24-byte pcap file header.
func (r *Reader) openPcap(bigEndian bool) error {
	h, _ := r.src.peek(pcapFileHeaderLen)
	if len(h) < pcapFileHeaderLen {
		if e := r.src.ioError(); e != nil {
			return fmt.Errorf("reading the pcap file header: %w", e)
		}
		return fmt.Errorf("the pcap file header is truncated (%d of %d bytes)", len(h), pcapFileHeaderLen)
	}
	p := &r.pc
	p.order = binary.LittleEndian
	if bigEndian {
		p.order = binary.BigEndian
	}
	magic := p.order.Uint32(h[0:4])
	p.nano = magic == magicPcapNano
	p.hdrLen = 16
	if magic == magicPcapModified {
		p.hdrLen = 24
	}
	major, minor := p.order.Uint16(h[4:6]), p.order.Uint16(h[6:8])
	p.snaplen = p.order.Uint32(h[16:20])
	p.link = p.order.Uint32(h[20:24]) & 0xffff // upper bits: FCS length and reserved
	p.maxRecord = maxSnaplen
	if p.snaplen > maxSnaplen {
		p.maxRecord = int(min(p.snaplen, maxBlock))
	}
	r.src.discard(pcapFileHeaderLen)
	r.stats.Format = "pcap"
	if p.nano {
		r.stats.Format = "pcap (nanosecond)"
	}
	if magic == magicPcapModified {
		r.stats.Format = "pcap (modified)"
	}
	if major != 2 {
		r.warn.add(0, "pcap file version %d.%d, expected 2.4: records are read as version 2.4", major, minor)
	}
	return nil
}

// nextPcap reads one record; false at the end of what can be read.
func (r *Reader) nextPcap() (frame, bool) {
	p := &r.pc
	for {
		h, _ := r.src.peek(p.hdrLen)
		if len(h) == 0 {
			return frame{}, false
		}
		num := r.stats.Frames + 1
		if len(h) < p.hdrLen {
			r.warn.add(num, "capture truncated in the frame's record header (read %d of %d bytes at offset %d): the rest of the file is lost", len(h), p.hdrLen, r.src.off)
			r.src.discard(len(h))
			return frame{}, false
		}
		sec, frac := p.order.Uint32(h[0:4]), p.order.Uint32(h[4:8])
		caplen, wirelen := p.order.Uint32(h[8:12]), p.order.Uint32(h[12:16])
		if caplen > uint32(p.maxRecord) {
			if !r.resyncPcap(num, caplen) {
				return frame{}, false
			}
			continue
		}
		n := int(caplen)
		b, _ := r.src.peek(p.hdrLen + n)
		fr := frame{
			data:    b[p.hdrLen:],
			capLen:  n,
			wireLen: int(max(wirelen, caplen)),
			time:    p.time(sec, frac),
			link:    p.link,
			key:     linkKey{iface: -1, link: p.link},
		}
		p.lastSec, p.haveLast = sec, true
		r.src.discard(len(b))
		if len(b) < p.hdrLen+n {
			r.warn.add(num, "capture truncated in the frame's data (read %d of %d bytes): the rest of the file is lost", len(b)-p.hdrLen, n)
			// The frame is decoded as far as it goes; the next read ends.
		}
		return fr, true
	}
}

func (p *pcapState) time(sec, frac uint32) time.Time {
	ns := int64(frac)
	if !p.nano {
		ns *= 1000
	}
	return time.Unix(int64(sec), ns).UTC()
}

// resyncPcap handles a record header whose length cannot be genuine: it
// scans for the next plausible record and says what was skipped.
func (r *Reader) resyncPcap(num int, caplen uint32) bool {
	at := r.src.off
	skipped, ok := r.src.resync(r.pc.candidate, resyncLimit)
	if !ok {
		r.warn.add(num, "corrupt record header at offset %d (a %d-byte frame, more than the %d a record holds) and no plausible record in the %d bytes after it: the rest of the file is lost", at, caplen, r.pc.maxRecord, skipped)
		return false
	}
	r.warn.add(num, "corrupt record header at offset %d (a %d-byte frame, more than the %d a record holds): skipped %d bytes to the next plausible record; the frames in them are lost and later frame numbers may differ from Wireshark's", at, caplen, r.pc.maxRecord, skipped)
	return true
}

// candidate judges whether b starts a record: a sane header followed by
// another sane header or the end of the file.
func (p *pcapState) candidate(b []byte, atEOF bool) verdict {
	if len(b) < p.hdrLen {
		if atEOF {
			return reject
		}
		return needMore
	}
	n, ok := p.saneHeader(b)
	if !ok {
		return reject
	}
	next := p.hdrLen + n
	switch {
	case len(b) == next && atEOF:
		return accept
	case len(b) < next+p.hdrLen:
		if atEOF {
			return reject
		}
		return needMore
	}
	if _, ok := p.saneHeader(b[next:]); ok {
		return accept
	}
	return reject
}

// saneHeader applies stricter rules than a normal read: a valid
// fraction of a second, a captured length no longer than the wire length,
// and a time within a day of the last good record.
func (p *pcapState) saneHeader(h []byte) (int, bool) {
	sec, frac := p.order.Uint32(h[0:4]), p.order.Uint32(h[4:8])
	caplen, wirelen := p.order.Uint32(h[8:12]), p.order.Uint32(h[12:16])
	limit := uint32(1e6)
	if p.nano {
		limit = 1e9
	}
	if frac >= limit || caplen > uint32(p.maxRecord) || caplen > wirelen || wirelen > maxBlock || wirelen == 0 {
		return 0, false
	}
	if p.haveLast {
		d := int64(sec) - int64(p.lastSec)
		if d < -86400 || d > 86400 {
			return 0, false
		}
	}
	return int(caplen), true
}
