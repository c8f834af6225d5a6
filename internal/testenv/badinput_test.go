package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/apiclient"
	"noops/internal/errkind"
	"noops/internal/source"
)

// liveState is what a bad upload must leave as it was.
type liveState struct {
	release  int
	releases int
}

func snapshot(t *testing.T, e *Env, app string) liveState {
	t.Helper()
	a, err := e.Client.App(context.Background(), app)
	if err != nil {
		t.Fatalf("app %s: %v", app, err)
	}
	rels, err := e.Client.Releases(context.Background(), app)
	if err != nil {
		t.Fatalf("releases %s: %v", app, err)
	}
	return liveState{release: a.Release, releases: len(rels)}
}

// unchanged checks that app still serves its live release, that no release
// was added and that the upload left no files behind.
func unchanged(t *testing.T, e *Env, app string, before liveState) {
	t.Helper()
	if got := snapshot(t, e, app); got != before {
		t.Errorf("after a bad upload the app is %+v, want %+v (nothing changed)", got, before)
	}
	if code, _ := e.Get(t, app, "/"); code != 200 {
		t.Errorf("live release answers %d after a bad upload, want 200", code)
	}
	waitFor(t, "the upload's work folder to go", 10*time.Second, func() bool {
		ents, err := os.ReadDir(filepath.Join(e.Data, "tmp"))
		return err == nil && len(ents) == 0
	})
}

// appWithBlob copies the example app and adds n random (incompressible)
// bytes, so that its upload is about n bytes.
func appWithBlob(t *testing.T, n int) string {
	t.Helper()
	dir := copyApp(t)
	blob := make([]byte, n)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testFullDisk deploys while the upload folder is a 256 KiB tmpfs.
func testFullDisk(t *testing.T, e *Env, app string) {
	before := snapshot(t, e, app)
	tmp := filepath.Join(e.Data, "tmp")
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Fatalf("mounting a small tmpfs on %s: %v", tmp, err)
	}
	defer func() {
		if err := unix.Unmount(tmp, 0); err != nil {
			t.Errorf("unmounting %s: %v", tmp, err)
		}
	}()
	_, _, err := e.Deploy(t, appWithBlob(t, 1<<20), app)
	if err == nil || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("deploy onto a full disk = %v, want an error saying the disk is full", err)
	}
	if k := apiclient.Kind(err); k != errkind.Unavailable {
		t.Errorf("full-disk error kind = %v, want %v", k, errkind.Unavailable)
	}
	if h := apiclient.Hint(err); !strings.Contains(h, "free space") {
		t.Errorf("full-disk hint = %q, want advice to free space", h)
	}
	unchanged(t, e, app, before)
}

// stallingReader gives the first n bytes of b, then blocks until ctx ends,
// as a client that stops sending would.
type stallingReader struct {
	ctx context.Context
	r   *bytes.Reader
	n   int
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		<-s.ctx.Done()
		return 0, s.ctx.Err()
	}
	if len(p) > s.n {
		p = p[:s.n]
	}
	k, err := s.r.Read(p)
	s.n -= k
	return k, err
}

// testDisconnect starts an upload, sends half of it and goes away.
func testDisconnect(t *testing.T, e *Env, app string) {
	before := snapshot(t, e, app)
	var buf bytes.Buffer
	dir := appWithBlob(t, 512<<10)
	if _, err := source.Pack(dir, &buf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &stallingReader{ctx: ctx, r: bytes.NewReader(buf.Bytes()), n: buf.Len() / 2}
	done := make(chan error, 1)
	go func() {
		_, err := e.Client.Deploy(ctx, app, r, int64(buf.Len()), "", nil)
		done <- err
	}()
	waitFor(t, "the upload to start", 10*time.Second, func() bool {
		ents, _ := os.ReadDir(filepath.Join(e.Data, "tmp"))
		return len(ents) > 0
	})
	time.Sleep(200 * time.Millisecond)
	cancel() // the client goes away mid-upload
	if err := <-done; err == nil {
		t.Fatal("a deploy whose client went away succeeded")
	}
	unchanged(t, e, app, before)
}
