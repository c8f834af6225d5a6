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

func TestCreateThenAttach(t *testing.T) {
	tn := newTestNet(t, 24, "")
	ctx := context.Background()
	if _, err := tn.Attach(ctx, "early"); err == nil {
		t.Fatal("Attach before Create succeeded, want an error")
	}
	path, err := tn.Create("early")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if path != tn.nsPath("early") || !isNS(path) {
		t.Fatalf("Create = %q, want a namespace at %q", path, tn.nsPath("early"))
	}
	if _, err := tn.Create("early"); err == nil {
		t.Error("second Create of one id succeeded, want a conflict")
	}
	att, err := tn.Attach(ctx, "early")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if att.NetNS != path || !tn.Subnet().Contains(att.IP) {
		t.Errorf("Attach = %+v, want namespace %s and an address in %s", att, path, tn.Subnet())
	}
}
