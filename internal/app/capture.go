package app

import (
	"context"
	"io"
	"time"

	"noops/internal/errkind"
	"noops/internal/forensics/pcap"
)

// capture records the traffic of one of app's sandboxes (sandbox, or the
// first healthy one) from the host side of its veth into w as pcapng,
// for d or until maxBytes were written.
func (a *App) capture(ctx context.Context, app, sandbox string, d time.Duration, maxBytes int64, w io.Writer) error {
	var id string
	for _, in := range a.super.Instances(app) {
		if sandbox != "" && in.ID == sandbox || sandbox == "" && in.State == "healthy" {
			id = in.ID
			break
		}
	}
	if id == "" {
		if sandbox != "" {
			return errkind.Errorf(errkind.NotFound, "%s has no sandbox %s", app, sandbox)
		}
		return errkind.WithHint(errkind.Conflict, errkind.Errorf(errkind.Conflict, "%s has no healthy sandbox to capture", app),
			"see `noops ps "+app+"`; an app at zero has none until a request wakes it")
	}
	veth, err := a.net.HostVeth(id)
	if err != nil {
		return err
	}
	a.log.Info("capturing a sandbox's traffic", "app", app, "sandbox", id, "interface", veth, "duration", d)
	n, err := pcap.Capture(ctx, veth, d, maxBytes, w)
	a.log.Info("capture ended", "app", app, "sandbox", id, "frames", n, "err", err)
	return err
}
