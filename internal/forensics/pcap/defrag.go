package pcap

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Fragment reassembly. A datagram is keyed by addresses, protocol and
// identification, as a host reassembles it (RFC 791, RFC 8200). Bytes are
// placed at their offsets; where fragments overlap, the bytes received
// first are kept and a conflict is reported. A datagram is returned when
// every byte up to the last fragment's end is held. Budgets bound memory:
// at most maxPendingDatagrams datagrams and maxPendingBytes bytes pending;
// a datagram not completed within fragTimeout of capture time or
// fragFrameWindow frames is dropped, before its identification can be
// reused by another datagram, with a warning that says what it held.
const (
	maxDatagram         = 65535
	maxPendingDatagrams = 1024
	maxPendingBytes     = 16 << 20
	fragTimeout         = 30 * time.Second
	fragFrameWindow     = 20000
	sweepEvery          = 256 // frames between looks for expired datagrams
)

type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
	v4       bool
}

type fragDatagram struct {
	data        []byte   // bytes so far, at their offsets
	have        []uint64 // bitset of the bytes held
	held        int      // count of the bytes held
	total       int      // datagram length, -1 until the last fragment came
	frames      int      // fragments taken
	first, last int      // frame numbers
	start       time.Time
	dead        bool   // cannot be rebuilt: later fragments are dropped
	conflict    bool   // overlapping fragments disagreed
	why         string // for a dead datagram: why
}

type defragmenter struct {
	m         map[fragKey]*fragDatagram
	bytes     int
	lastSweep int
}

// add takes one fragment; it returns the datagram's payload when this
// fragment completes it.
func (d *defragmenter) add(r *Reader, ip *ipLayer, cut bool, now time.Time) ([]byte, bool) {
	if d.m == nil {
		d.m = make(map[fragKey]*fragDatagram)
	}
	frameNum := r.stats.Frames
	if frameNum-d.lastSweep >= sweepEvery {
		d.lastSweep = frameNum
		d.sweep(r, frameNum, now)
	}
	key := fragKey{src: ip.src, dst: ip.dst, id: ip.fragID, proto: ip.proto, v4: ip.v4}
	g := d.m[key]
	if g == nil {
		for len(d.m) > 0 && (len(d.m) >= maxPendingDatagrams || d.bytes > maxPendingBytes) {
			d.evictOldest(r, "dropped to stay within the reassembly budget")
		}
		g = &fragDatagram{total: -1, first: frameNum, start: now}
		d.m[key] = g
	}
	g.frames++
	g.last = frameNum
	if g.dead {
		r.skip(SkipFragmentLost)
		return nil, false
	}
	end := ip.fragOff + len(ip.payload)
	switch {
	case cut:
		d.kill(r, key, g, "the fragment in this frame was cut by the snap length")
		return nil, false
	case end > maxDatagram:
		d.kill(r, key, g, fmt.Sprintf("the fragment in this frame ends at byte %d, past the largest datagram", end))
		return nil, false
	case !ip.fragMore && g.total >= 0 && g.total != end:
		d.kill(r, key, g, fmt.Sprintf("two last fragments end at bytes %d and %d", g.total, end))
		return nil, false
	case !ip.fragMore && len(g.data) > end, g.total >= 0 && end > g.total:
		d.kill(r, key, g, "the fragment in this frame reaches past the datagram's end")
		return nil, false
	case ip.fragMore && len(ip.payload)%8 != 0:
		d.kill(r, key, g, fmt.Sprintf("the fragment in this frame is not the last but its length %d is not a multiple of 8", len(ip.payload)))
		return nil, false
	}
	if !ip.fragMore {
		g.total = end
	}
	d.place(g, ip.fragOff, ip.payload)
	if g.total >= 0 && g.held == g.total {
		delete(d.m, key)
		d.bytes -= len(g.data)
		r.moveSkips(SkipFragment, SkipFragmentUsed, g.frames-1)
		if g.conflict {
			r.warn.add(frameNum, "IP fragments of datagram %s → %s (id %d) overlap with different bytes: the bytes received first were kept", ip.src, ip.dst, ip.fragID)
		}
		return g.data[:g.total], true
	}
	r.skip(SkipFragment)
	return nil, false
}

// place copies b to offset off, keeping bytes already held.
func (d *defragmenter) place(g *fragDatagram, off int, b []byte) {
	end := off + len(b)
	if end > len(g.data) {
		d.bytes += end - len(g.data)
		g.data = append(g.data, make([]byte, end-len(g.data))...)
		if words := (end + 63) / 64; words > len(g.have) {
			g.have = append(g.have, make([]uint64, words-len(g.have))...)
		}
	}
	for i, c := range b {
		j := off + i
		w, bit := j/64, uint64(1)<<(j%64)
		if g.have[w]&bit != 0 {
			if g.data[j] != c {
				g.conflict = true
			}
			continue
		}
		g.have[w] |= bit
		g.data[j] = c
		g.held++
	}
}

// kill marks a datagram as impossible to rebuild, counting its fragments
// as lost and saying why.
func (d *defragmenter) kill(r *Reader, key fragKey, g *fragDatagram, why string) {
	r.warn.add(g.last, "IP datagram %s → %s (id %d) cannot be rebuilt: %s; its %d fragments are dropped", key.src, key.dst, key.id, why, g.frames)
	r.skip(SkipFragmentLost)
	d.lose(r, g)
	g.dead, g.why = true, why
	d.bytes -= len(g.data)
	g.data, g.have = nil, nil
}

// lose moves the fragments held for g from the held count to the lost.
func (d *defragmenter) lose(r *Reader, g *fragDatagram) {
	if g.dead {
		return
	}
	held := g.frames - 1 // the current fragment is not counted yet
	r.moveSkips(SkipFragment, SkipFragmentLost, held)
}

// sweep drops datagrams that waited too long.
func (d *defragmenter) sweep(r *Reader, frameNum int, now time.Time) {
	var expired []fragKey
	for k, g := range d.m {
		if frameNum-g.last > fragFrameWindow || now.Sub(g.start) > fragTimeout {
			expired = append(expired, k)
		}
	}
	d.drop(r, expired, "not completed in time")
}

func (d *defragmenter) evictOldest(r *Reader, why string) {
	var oldest fragKey
	first := -1
	for k, g := range d.m {
		if first < 0 || g.first < first {
			oldest, first = k, g.first
		}
	}
	d.drop(r, []fragKey{oldest}, why)
}

// flush drops every pending datagram at the end of the capture.
func (d *defragmenter) flush(r *Reader) {
	keys := make([]fragKey, 0, len(d.m))
	for k := range d.m {
		keys = append(keys, k)
	}
	d.drop(r, keys, "still incomplete at the end of the capture")
}

// drop removes datagrams, in frame order, warning for those not already
// dead.
func (d *defragmenter) drop(r *Reader, keys []fragKey, why string) {
	slices.SortFunc(keys, func(a, b fragKey) int { return cmp.Compare(d.m[a].first, d.m[b].first) })
	for _, k := range keys {
		g := d.m[k]
		delete(d.m, k)
		d.bytes -= len(g.data)
		if g.dead {
			continue
		}
		total := "an unknown number of"
		if g.total >= 0 {
			total = fmt.Sprint(g.total)
		}
		r.warn.add(g.first, "IP datagram %s → %s (id %d): fragments in frames %d–%d held %d of %s bytes, %s: dropped", k.src, k.dst, k.id, g.first, g.last, g.held, total, why)
		r.moveSkips(SkipFragment, SkipFragmentLost, g.frames)
	}
}
