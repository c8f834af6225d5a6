package pcap

import (
	"fmt"
	"maps"
	"strings"

	"github.com/gopacket/gopacket/layers"

	"noops/internal/forensics/flow"
)

// Stats counts what a Reader saw.
type Stats struct {
	Format      string                  // "pcap", "pcap (nanosecond)", "pcapng", each with " (gzip)" when compressed
	Frames      int                     // packet records read (frame numbers run 1..Frames)
	Bytes       int64                   // captured bytes of those frames
	Decoded     int                     // Packets returned by Next
	Truncated   int                     // of those, Packets whose payload the snap length cut
	Reassembled int                     // datagrams rebuilt from IP fragments (each returned once)
	Skipped     map[string]int          // frames not returned, by reason (the Skip... constants)
	LinkTypes   map[layers.LinkType]int // frames per link type
}

// Reasons a frame is not returned by Next, the keys of Stats.Skipped.
// A frame of an IP protocol other than TCP and UDP is counted under the
// protocol's name ("ICMP", "ICMPv6", "IGMP", "GRE", "ESP", "SCTP") or
// SkipOtherProtocol.
const (
	SkipLinkType      = "unsupported link type"
	SkipNotIP         = "not IP"            // ARP, LLDP, other EtherTypes
	SkipOtherProtocol = "other IP protocol" // see above
	SkipMalformed     = "malformed headers" // lengths that contradict each other
	SkipCut           = "headers cut by the snap length"
	SkipFragment      = "IP fragment held for reassembly"       // only while reading: at the end each is used or dropped
	SkipFragmentUsed  = "IP fragment in a reassembled datagram" // returned as part of the Packet of its last fragment
	SkipFragmentLost  = "IP fragment dropped"                   // cut, contradictory, incomplete, or over a budget
	SkipInterface     = "unknown interface"                     // a pcapng packet naming an interface the section lacks
)

// protocolReason names the skip reason of IP protocol p.
func protocolReason(p uint8) string {
	switch p {
	case 1:
		return "ICMP"
	case 2:
		return "IGMP"
	case 47:
		return "GRE"
	case 50:
		return "ESP"
	case 58:
		return "ICMPv6"
	case 132:
		return "SCTP"
	}
	return SkipOtherProtocol
}

// maxWarnings is how many warnings are kept word for word; the rest are
// counted.
const maxWarnings = 100

// warnings keeps the first maxWarnings warnings and counts the others.
type warnings struct {
	kept    []flow.Warning
	dropped int
}

func (w *warnings) add(frame int, format string, args ...any) {
	if len(w.kept) >= maxWarnings {
		w.dropped++
		return
	}
	w.kept = append(w.kept, flow.Warning{Frame: frame, Message: fmt.Sprintf(format, args...)})
}

// tally counts frames per key (an interface's unsupported link type, a
// block type) so that a summary warning replaces thousands of equal ones.
// It names at most maxTallyKeys keys; the rest are counted together.
type tally[K comparable] struct {
	order      []K
	counts     map[K]int
	otherKeys  int // keys beyond maxTallyKeys
	otherCount int // and their frames or blocks
	seenOther  map[K]bool
}

const maxTallyKeys = 32

func (t *tally[K]) add(k K) {
	if t.counts == nil {
		t.counts = make(map[K]int)
	}
	if _, ok := t.counts[k]; ok || len(t.order) < maxTallyKeys {
		if !ok {
			t.order = append(t.order, k)
		}
		t.counts[k]++
		return
	}
	t.otherCount++
	if t.seenOther == nil {
		t.seenOther = make(map[K]bool)
	}
	if !t.seenOther[k] && len(t.seenOther) < 1<<16 {
		t.seenOther[k] = true
		t.otherKeys++
	}
}

// linkKey names an interface's link type: interface is -1 in a pcap file.
type linkKey struct {
	section, iface int
	link           uint32
}

// summary returns the warnings that sum up the tallies, computed now so
// that they count every frame read so far.
func (r *Reader) summary() []flow.Warning {
	var out []flow.Warning
	for _, k := range r.badLinks.order {
		n := r.badLinks.counts[k]
		var msg string
		switch {
		case k.iface < 0:
			msg = fmt.Sprintf("link type %s is not supported: its %d frames are skipped", linkLabel(k.link), n)
		case k.section > 0:
			msg = fmt.Sprintf("link type %s of interface %d in section %d is not supported: its %d frames are skipped", linkLabel(k.link), k.iface, k.section+1, n)
		default:
			msg = fmt.Sprintf("link type %s of interface %d is not supported: its %d frames are skipped", linkLabel(k.link), k.iface, n)
		}
		out = append(out, flow.Warning{Message: msg})
	}
	if t := r.badLinks; t.otherCount > 0 {
		out = append(out, flow.Warning{Message: fmt.Sprintf("%d frames of %d more interfaces with unsupported link types are skipped", t.otherCount, t.otherKeys)})
	}
	for _, k := range r.badIfaces.order {
		out = append(out, flow.Warning{Message: fmt.Sprintf("%d frames name interface %d, which section %d does not describe: skipped", r.badIfaces.counts[k], k.iface, k.section+1)})
	}
	if t := r.badIfaces; t.otherCount > 0 {
		out = append(out, flow.Warning{Message: fmt.Sprintf("%d frames name %d more interfaces that their sections do not describe: skipped", t.otherCount, t.otherKeys)})
	}
	for _, t := range r.unknownBlocks.order {
		out = append(out, flow.Warning{Message: fmt.Sprintf("%d pcapng blocks of unknown type 0x%08x skipped", r.unknownBlocks.counts[t], t)})
	}
	if t := r.unknownBlocks; t.otherCount > 0 {
		out = append(out, flow.Warning{Message: fmt.Sprintf("%d pcapng blocks of %d more unknown types skipped", t.otherCount, t.otherKeys)})
	}
	if r.warn.dropped > 0 {
		out = append(out, flow.Warning{Message: fmt.Sprintf("%d more warnings not shown", r.warn.dropped)})
	}
	return out
}

// linkLabel names a link type for a warning: its number, and gopacket's
// name for it when it has one.
func linkLabel(t uint32) string {
	if t > 0xffff {
		return "(invalid)"
	}
	name := layers.LinkType(t).String()
	if strings.HasPrefix(name, "Unknown") || strings.HasPrefix(name, "LinkType(") {
		return fmt.Sprint(t)
	}
	return fmt.Sprintf("%d (%s)", t, name)
}

// copyStats returns a deep copy, so a caller cannot change the reader's.
func copyStats(s Stats) Stats {
	s.Skipped = maps.Clone(s.Skipped)
	s.LinkTypes = maps.Clone(s.LinkTypes)
	return s
}
