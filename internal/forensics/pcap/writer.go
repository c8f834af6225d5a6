package pcap

import (
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer writes a pcapng capture with one interface and nanosecond
// timestamps. It is pcapgo's NgWriter with the snap length applied.
type Writer struct {
	ng      *pcapgo.NgWriter
	snaplen int
}

// NewWriter writes the section header and the interface description of a
// pcapng file to w. Frames longer than snaplen are cut to it (0 keeps
// them whole). Flush before closing w.
func NewWriter(w io.Writer, linkType layers.LinkType, snaplen int) (*Writer, error) {
	return newWriter(w, linkType, snaplen, "")
}

// newWriter is NewWriter naming the interface (if_name).
func newWriter(w io.Writer, linkType layers.LinkType, snaplen int, name string) (*Writer, error) {
	if snaplen < 0 {
		return nil, fmt.Errorf("starting pcapng writer: negative snap length %d", snaplen)
	}
	iface := pcapgo.DefaultNgInterface
	iface.LinkType = linkType
	iface.SnapLength = uint32(snaplen)
	iface.Name = name
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "noops"}}
	ng, err := pcapgo.NewNgWriterInterface(w, iface, opts)
	if err != nil {
		return nil, fmt.Errorf("starting pcapng writer: %w", err)
	}
	return &Writer{ng: ng, snaplen: snaplen}, nil
}

// WritePacket writes one frame. ci.Length is the frame's length on the
// wire (len(data) if smaller); the frame is cut to the snap length.
func (w *Writer) WritePacket(ci gopacket.CaptureInfo, data []byte) error {
	ci.Length = max(ci.Length, len(data))
	if w.snaplen > 0 && len(data) > w.snaplen {
		data = data[:w.snaplen]
	}
	ci.CaptureLength = len(data)
	ci.InterfaceIndex = 0
	if err := w.ng.WritePacket(ci, data); err != nil {
		return fmt.Errorf("writing frame to pcapng: %w", err)
	}
	return nil
}

// WriteStats records the interface's counters at time at (an Interface
// Statistics Block): frames received and frames the kernel dropped.
func (w *Writer) WriteStats(at time.Time, received, dropped uint64) error {
	err := w.ng.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{
		LastUpdate:      at,
		PacketsReceived: received,
		PacketsDropped:  dropped,
	})
	if err != nil {
		return fmt.Errorf("writing interface statistics to pcapng: %w", err)
	}
	return nil
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error {
	if err := w.ng.Flush(); err != nil {
		return fmt.Errorf("flushing pcapng: %w", err)
	}
	return nil
}
