package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"noops/internal/testenv/need"
)

// natRules returns the lines of `iptables -t nat -S` that belong to sandbox
// id of network tn: those with its CNI comment, and those of the chains
// they jump to.
func natRules(t *testing.T, tn testNet, id string) []string {
	t.Helper()
	out, err := run("iptables", "-t", "nat", "-S")
	if err != nil {
		t.Fatalf("iptables -t nat -S: %v: %s", err, out)
	}
	comment := fmt.Sprintf(`name: \"noops-%s\" id: \"%s\"`, tn.Bridge(), id)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	chains := map[string]bool{}
	for _, l := range lines {
		if _, target, ok := strings.Cut(l, " -j "); ok && strings.Contains(l, comment) && strings.HasPrefix(target, "CNI-") {
			chains[target] = true
		}
	}
	var mine []string
	for _, l := range lines {
		f := strings.Fields(l)
		if strings.Contains(l, comment) || len(f) > 1 && chains[f[1]] {
			mine = append(mine, l)
		}
	}
	return mine
}

// defaultRoute reports whether the namespace at path has a default route,
// from its /proc/net/route.
func defaultRoute(t *testing.T, path string) bool {
	t.Helper()
	var b []byte
	var err error
	inNS(t, path, func() { b, err = os.ReadFile("/proc/thread-self/net/route") })
	if err != nil {
		t.Fatalf("reading the routes of %s: %v", path, err)
	}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 7 && f[1] == "00000000" && f[7] == "00000000" {
			return true
		}
	}
	return false
}

// TestIPMasq: with IPMasq a sandbox has a default route through the bridge
// (it reaches this machine's address on another bridge, outside its
// subnet) and the bridge plugin masquerades its traffic leaving the
// subnet, with rules that Teardown removes; without it there is neither.
func TestIPMasq(t *testing.T) {
	t.Parallel()
	need.Program(t, "iptables")
	// An address of this machine outside the tested networks: the gateway
	// of another bridge.
	other := newTestNet(t, 24, "")
	if _, err := other.Setup(context.Background(), "other"); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	ln, err := net.Listen("tcp", netip.AddrPortFrom(other.Subnet().Addr().Next(), 0).String())
	if err != nil {
		t.Fatalf("listening on the other bridge: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cases := []struct {
		name   string
		ipMasq bool
	}{
		{"off by default", false},
		{"on", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNet(t, 24, "", func(c *Config) { c.IPMasq = tc.ipMasq })
			ctx := context.Background()
			const id = "masq-1"
			att, err := tn.Setup(ctx, id)
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if got := defaultRoute(t, att.NetNS); got != tc.ipMasq {
				t.Errorf("default route in the sandbox: %v, want %v", got, tc.ipMasq)
			}
			var derr error
			inNS(t, att.NetNS, func() {
				var c net.Conn
				if c, derr = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); derr == nil {
					c.Close()
				}
			})
			if tc.ipMasq && derr != nil {
				t.Errorf("dialling %s outside the subnet: %v, want a connection", ln.Addr(), derr)
			}
			if !tc.ipMasq && (derr == nil || !strings.Contains(derr.Error(), "network is unreachable")) {
				t.Errorf("dialling %s outside the subnet: %v, want network is unreachable", ln.Addr(), derr)
			}
			rules := natRules(t, tn, id)
			joined := strings.Join(rules, "\n")
			if !tc.ipMasq {
				if len(rules) > 0 {
					t.Errorf("NAT rules for a network without IPMasq:\n%s", joined)
				}
				return
			}
			var chain string
			for _, r := range rules {
				if strings.HasPrefix(r, "-A POSTROUTING -s "+att.IP.String()+"/32 ") {
					_, chain, _ = strings.Cut(r, " -j ")
				}
			}
			if chain == "" {
				t.Fatalf("no POSTROUTING rule for %s jumping to a CNI chain in:\n%s", att.IP, joined)
			}
			for _, want := range []string{
				"-N " + chain,
				"-A " + chain + " -d " + tn.Subnet().String() + " ", // traffic within the subnet is left alone
				"-A " + chain + " ! -d 224.0.0.0/4 ",                // the rest is masqueraded
			} {
				if !strings.Contains(joined, want) {
					t.Errorf("NAT rules lack %q:\n%s", want, joined)
				}
			}
			if !strings.Contains(joined, "-j MASQUERADE") {
				t.Errorf("NAT rules do not masquerade:\n%s", joined)
			}
			if err := tn.Teardown(ctx, id); err != nil {
				t.Fatalf("Teardown: %v", err)
			}
			if left := natRules(t, tn, id); len(left) > 0 {
				t.Errorf("NAT rules left after Teardown:\n%s", strings.Join(left, "\n"))
			}
			if out, _ := run("iptables", "-t", "nat", "-S"); strings.Contains(out, chain) {
				t.Errorf("chain %s left after Teardown:\n%s", chain, out)
			}
		})
	}
}
