package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"noops/internal/apiclient"
)

// TestOOMKillShown: an app that allocates past its memory limit is killed
// by the kernel; `noops ps` says so, and the app restarts and serves.
func TestOOMKillShown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := Start(t, Options{})
	ctx := context.Background()
	dir := copyApp(t)
	if err := os.WriteFile(filepath.Join(dir, "noops.yaml"), []byte("name: hog\nrun:\n  health: /healthz\n  memory: 32Mi\naccess: { policy: public }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	edit(t, dir, "main.go", `	mux.HandleFunc("GET /healthz",`, `	mux.HandleFunc("GET /alloc", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 64; i++ { // 256 MiB, touched, kept
			b := make([]byte, 4<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			hoard = append(hoard, b)
		}
		fmt.Fprintln(w, len(hoard))
	})
	mux.HandleFunc("GET /healthz",`)
	edit(t, dir, "main.go", "func main() {", "var hoard [][]byte\n\nfunc main() {")
	deployOK(t, e, dir, "hog")
	if code, _ := e.Get(t, "hog", "/alloc"); code == 200 {
		t.Fatalf("GET /alloc of 256 MiB under a 32 MiB limit answered 200")
	}
	waitFor(t, "ps to show the OOM kill", 30*time.Second, func() bool {
		ps, err := e.Client.Ps(ctx, "hog")
		if err != nil {
			t.Fatal(err)
		}
		return len(ps) == 1 && ps[0].Restarts >= 1 && strings.Contains(ps[0].LastExit, "out of memory")
	})
	evs, err := e.Client.Events(ctx, apiclient.EventQuery{App: "hog"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || ev.Kind == "oom" && strings.Contains(ev.Message, "memory limit of 32Mi")
	}
	if !found {
		t.Errorf("events of hog = %+v, want an oom event naming the limit", evs)
	}
	waitFor(t, "hog to serve again", 30*time.Second, func() bool {
		code, _ := e.Get(t, "hog", "/")
		return code == 200
	})
}
