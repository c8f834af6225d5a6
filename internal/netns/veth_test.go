package netns

import (
	"context"
	"net"
	"strings"
	"testing"

	"noops/internal/errkind"
)

// TestHostVeth: the host side of a sandbox's veth is a host interface
// enslaved to the bridge, and differs between sandboxes.
func TestHostVeth(t *testing.T) {
	tn := newTestNet(t, 24, "")
	ctx := context.Background()
	names := map[string]bool{}
	for _, id := range []string{"veth-a", "veth-b"} {
		if _, err := tn.Setup(ctx, id); err != nil {
			t.Fatalf("Setup(%s): %v", id, err)
		}
		name, err := tn.HostVeth(id)
		if err != nil {
			t.Fatalf("HostVeth(%s): %v", id, err)
		}
		ifi, err := net.InterfaceByName(name)
		if err != nil || !strings.HasPrefix(name, "veth") {
			t.Fatalf("HostVeth(%s) = %q (%v), want a host veth", id, name, err)
		}
		if names[name] {
			t.Errorf("two sandboxes have host veth %s", name)
		}
		names[name] = true
		_ = ifi
	}
	if _, err := tn.HostVeth("no-such-sandbox"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("HostVeth of an unknown sandbox = %v, want not found", err)
	}
}
