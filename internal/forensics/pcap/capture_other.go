//go:build !linux

package pcap

import (
	"context"
	"errors"
	"io"
	"time"
)

// Capture records the frames of interface iface; it needs Linux's
// AF_PACKET sockets.
func Capture(ctx context.Context, iface string, d time.Duration, maxBytes int64, w io.Writer) (int, error) {
	return 0, errors.New("capturing packets: only supported on Linux")
}
