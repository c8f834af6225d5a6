package app

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"noops/internal/netns"
)

// startFirewall confines the app network: no sandbox reaches another one
// directly, the host only at the gateway's ports, and the outside only at
// its release's egress allow-list (supervisor.Firewall).
func (a *App) startFirewall(context.Context) error {
	var ports []uint16
	https, _ := a.gateway.Addr()
	for _, ad := range []net.Addr{https, a.gateway.InternalAddr()} {
		if ad == nil {
			continue
		}
		_, p, err := net.SplitHostPort(ad.String())
		if n, perr := strconv.ParseUint(p, 10, 16); err == nil && perr == nil {
			ports = append(ports, uint16(n))
		}
	}
	table := "noops_app_" + a.net.Bridge()
	fw, err := netns.NewAppFirewall(netns.AppFirewallConfig{Table: table, Bridge: a.net.Bridge(), Subnet: a.net.Subnet(), HostPorts: ports})
	if err != nil {
		return fmt.Errorf("applying the app network's firewall: %w", err)
	}
	a.firewall = &firewall{fw: fw}
	// The tables stay when the server stops: sandboxes outlive it, and
	// so must their confinement. The next server replaces them.
	return nil
}

// firewall adapts netns.AppFirewall to the supervisor: egress entries of
// a manifest are resolved when a sandbox starts.
type firewall struct{ fw *netns.AppFirewall }

func (f *firewall) Admit(ctx context.Context, id string, addr netip.Addr, egress []string) error {
	rules, err := netns.ResolveEgress(ctx, nil, egress)
	if err != nil {
		return err
	}
	return f.fw.Allow(id, addr, rules)
}

func (f *firewall) Forget(id string) error { return f.fw.Forget(id) }
