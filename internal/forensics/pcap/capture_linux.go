//go:build linux

package pcap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

const (
	captureSnaplen = maxSnaplen // the most a packet socket hands over
	pollInterval   = 100 * time.Millisecond
	socketBuffer   = 8 << 20 // receive buffer asked of the kernel
	epbOverhead    = 32      // an Enhanced Packet Block around a frame
	isbSize        = 64      // the closing statistics block, at most
	arphrdEther    = unix.ARPHRD_ETHER
	arphrdLoopback = unix.ARPHRD_LOOPBACK
	arphrdNone     = unix.ARPHRD_NONE
)

// Capture records the frames of interface iface (a sandbox's host-side
// veth) with an AF_PACKET socket into w as pcapng, until ctx ends, d
// elapses (0: no limit) or the next frame would take the file past
// maxBytes (0: no limit). Frames are kept whole up to 256 KiB. It writes
// the kernel's received and dropped counts in a closing statistics block
// and returns the count of frames written. Ending by ctx is a normal stop,
// not an error. It needs root or CAP_NET_RAW.
func Capture(ctx context.Context, iface string, d time.Duration, maxBytes int64, w io.Writer) (frames int, err error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return 0, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	// Protocol 0 receives nothing until bind names the interface, so no
	// frame of another interface slips in between.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0, fmt.Errorf("capturing on %s: opening a packet socket (needs root or CAP_NET_RAW): %w", iface, err)
	}
	defer unix.Close(fd)
	if err := setupSocket(fd, ifi.Index); err != nil {
		return 0, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, fmt.Errorf("capturing on %s: reading the socket's address: %w", iface, err)
	}
	hatype := sa.(*unix.SockaddrLinklayer).Hatype
	link, err := captureLinkType(hatype)
	if err != nil {
		return 0, fmt.Errorf("capturing on %s: %w", iface, err)
	}

	cw := &countingWriter{w: w}
	wr, err := newWriter(cw, link, captureSnaplen, iface)
	if err != nil {
		return 0, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	if err := wr.Flush(); err != nil {
		return 0, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	size := cw.n

	var end time.Time
	if d > 0 {
		end = time.Now().Add(d)
	}
	buf := make([]byte, captureSnaplen)
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{})))+unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))+64)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
capture:
	for ctx.Err() == nil {
		wait := pollInterval
		if !end.IsZero() {
			left := time.Until(end)
			if left <= 0 {
				break
			}
			wait = min(wait, left)
		}
		n, err := unix.Poll(fds, int(wait.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return frames, fmt.Errorf("capturing on %s: polling: %w", iface, err)
		}
		if n == 0 {
			continue
		}
		for {
			f, err := readFrame(fd, buf, oob, hatype)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return frames, fmt.Errorf("capturing on %s: receiving: %w", iface, err)
			}
			if f.skip {
				continue
			}
			grow := int64(epbOverhead + (len(f.data)+3)&^3)
			if maxBytes > 0 && size+grow+isbSize > maxBytes {
				break capture
			}
			if err := wr.WritePacket(f.ci, f.data); err != nil {
				return frames, fmt.Errorf("capturing on %s: %w", iface, err)
			}
			size += grow
			frames++
		}
	}
	if st, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		if err := wr.WriteStats(time.Now(), uint64(st.Packets), uint64(st.Drops)); err != nil {
			return frames, fmt.Errorf("capturing on %s: %w", iface, err)
		}
	}
	if err := wr.Flush(); err != nil {
		return frames, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	return frames, nil
}

// setupSocket asks for auxiliary data (stripped VLAN tags, original
// lengths), kernel timestamps and a large buffer, then binds the socket to
// the interface for every protocol.
func setupSocket(fd, ifindex int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fmt.Errorf("asking for packet auxiliary data: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("asking for packet timestamps: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
		// Without CAP_NET_ADMIN the kernel's rmem_max applies; the
		// default buffer still works, with more drops under load.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
	}
	sll := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sll); err != nil {
		return fmt.Errorf("binding the packet socket: %w", err)
	}
	return nil
}

// captureLinkType maps an ARPHRD hardware type to the file's link type.
func captureLinkType(hatype uint16) (layers.LinkType, error) {
	switch hatype {
	case arphrdEther, arphrdLoopback:
		return layers.LinkTypeEthernet, nil
	case arphrdNone: // tun devices: IP with no link header
		return layers.LinkTypeRaw, nil
	}
	return 0, fmt.Errorf("hardware type %d is not supported (only Ethernet, loopback and raw IP)", hatype)
}

// capturedFrame is one frame received from the socket.
type capturedFrame struct {
	ci   gopacket.CaptureInfo
	data []byte
	skip bool // a loopback frame seen a second time, on its way out
}

// readFrame receives one frame. The kernel strips VLAN tags into the
// auxiliary data; they are put back, as libpcap does.
func readFrame(fd int, buf, oob []byte, hatype uint16) (capturedFrame, error) {
	n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_TRUNC)
	if err != nil {
		return capturedFrame{}, err
	}
	var f capturedFrame
	if ll, ok := from.(*unix.SockaddrLinklayer); ok && hatype == arphrdLoopback && ll.Pkttype == unix.PACKET_OUTGOING {
		f.skip = true // loopback shows every frame twice: keep the incoming copy
		return f, nil
	}
	f.data = buf[:min(n, len(buf))]
	f.ci.Length = n
	f.ci.Timestamp = time.Now()
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			f.ci.Timestamp = time.Unix(ts.Unix())
		case m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			f.ci.Length = int(aux.Len)
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && hatype == arphrdEther && len(f.data) >= 12 {
				tpid := uint16(0x8100)
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					tpid = aux.Vlan_tpid
				}
				tagged := make([]byte, 0, len(f.data)+4)
				tagged = append(tagged, f.data[:12]...)
				tagged = append(tagged, byte(tpid>>8), byte(tpid), byte(aux.Vlan_tci>>8), byte(aux.Vlan_tci))
				f.data = append(tagged, f.data[12:]...)
				f.ci.Length += 4
			}
		}
	}
	f.ci.Length = max(f.ci.Length, len(f.data))
	return f, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
