package netns

import (
	"context"
	"os/exec"
	"testing"
)

func TestCloseKeepsAttachedSandboxesThenCleansUp(t *testing.T) {
	tn := newTestNet(t, 24, "")
	ctx := context.Background()
	if _, err := tn.Setup(ctx, "kept"); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	bridgeExists := func() bool { return exec.Command("ip", "link", "show", tn.bridge).Run() == nil }

	if err := tn.Close(ctx); err != nil {
		t.Fatalf("Close with a sandbox attached: %v", err)
	}
	if ok, _ := isMountPoint(tn.nsDir); !ok || !bridgeExists() {
		t.Fatalf("Close with a sandbox attached removed the mount (%v) or the bridge (%v), want both kept", !ok, !bridgeExists())
	}
	if !isNS(tn.nsPath("kept")) {
		t.Fatal("Close with a sandbox attached broke its namespace")
	}

	if err := tn.Teardown(ctx, "kept"); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := tn.Close(ctx); err != nil {
			t.Fatalf("Close #%d after Teardown: %v", i+1, err)
		}
	}
	if ok, _ := isMountPoint(tn.nsDir); ok {
		t.Error("namespace folder still mounted after Close")
	}
	if bridgeExists() {
		t.Errorf("bridge %s still exists after Close", tn.bridge)
	}
}
