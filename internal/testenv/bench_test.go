package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/apitype"
	"noops/internal/testenv/need"
)

// rebaseApps is how many copies of examples/hello-static BenchmarkRebase
// rebases one after another.
const rebaseApps = 20

// BenchmarkRebase measures issue 3's rebase target (< 1 s per app,
// independent of the app's size): it deploys rebaseApps copies of
// examples/hello-static and examples/hello-node, stands in for a stack
// update that patches the static and node run images, then times
// Client.Rebase (new image, new release, health-gated rollout) for one app
// alone, for each of the other static apps one after another, and for the
// larger Node app. Every rebased app must answer 200 afterwards. It runs
// once whatever b.N is (run it with -benchtime 1x): the set-up takes
// minutes and each rebase changes what the next one starts from.
//
//	go test -run '^$' -bench BenchmarkRebase -benchtime 1x ./internal/testenv/
func BenchmarkRebase(b *testing.B) {
	if testing.Short() {
		b.Skip("deploys 21 apps on stacks built from the Debian archive")
	}
	e := startBench(b)
	ctx := context.Background()

	statics := make([]string, rebaseApps)
	for i := range statics {
		statics[i] = fmt.Sprintf("static-%02d", i+1)
		deployBench(b, e, Example(b, "hello-static"), statics[i])
	}
	const node = "hello-node"
	deployBench(b, e, Example(b, "hello-node"), node)
	staticSize, nodeSize := liveImageSize(b, e, statics[0]), liveImageSize(b, e, node)

	patchRunImage(b, e, "static")
	patchRunImage(b, e, "node")

	// rebase times one rebase: all of it, and the part before the rollout
	// (checks, the rebased image, the release), which is what depends on
	// the image; the rest is starting the new sandbox until it is healthy.
	type timing struct{ total, image time.Duration }
	rebase := func(app string) timing {
		b.Helper()
		before, err := e.Client.App(ctx, app)
		if err != nil {
			b.Fatal(err)
		}
		var rollout time.Time
		start := time.Now()
		ev, err := e.Client.Rebase(ctx, app, false, func(ev apitype.DeployEvent) {
			if ev.Type == "stage" && ev.Stage == "rolling-out" {
				rollout = time.Now()
			}
		})
		t := timing{total: time.Since(start)}
		if err != nil {
			b.Fatalf("rebase %s: %v", app, err)
		}
		if ev.Rebase == nil || ev.Rebase.Unchanged || ev.Rebase.Release == nil || ev.Rebase.Release.Number <= before.Release {
			b.Fatalf("rebase %s = %+v, want a new release after %d", app, ev.Rebase, before.Release)
		}
		if rollout.IsZero() {
			b.Fatalf("rebase %s streamed no rolling-out stage", app)
		}
		t.image = rollout.Sub(start)
		if code, body := e.Get(b, app, "/"); code != 200 {
			b.Fatalf("%s answers %d after its rebase, want 200: %q", app, code, body)
		}
		return t
	}

	b.ResetTimer()
	times := []timing{rebase(statics[0])}
	for _, app := range statics[1:] {
		times = append(times, rebase(app))
	}
	nodeTime := rebase(node)
	b.StopTimer()

	var total, image time.Duration
	var worst time.Duration
	for _, t := range times {
		total += t.total
		image += t.image
		worst = max(worst, t.total)
	}
	mean, imageMean := total/time.Duration(len(times)), image/time.Duration(len(times))
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(0, "ns/op") // one pass, not a per-iteration time
	b.ReportMetric(ms(times[0].total), "ms/app-1")
	b.ReportMetric(ms(mean), "ms/app-20-mean")
	b.ReportMetric(ms(worst), "ms/app-20-max")
	b.ReportMetric(ms(nodeTime.total), "ms/app-node")
	b.ReportMetric(ms(imageMean), "ms/app-20-image-mean")
	b.ReportMetric(ms(nodeTime.image), "ms/app-node-image")
	b.Logf("rebase: 1 app %.0f ms; %d apps one after another %.1f s, mean %.0f ms, max %.0f ms per app; "+
		"hello-node %.0f ms (target < 1000 ms per app). Before the rollout: hello-static mean %.0f ms (image %.1f MB), "+
		"hello-node %.0f ms (image %.1f MB); the rest is starting the new sandbox until healthy",
		ms(times[0].total), len(times), total.Seconds(), ms(mean), ms(worst), ms(nodeTime.total),
		ms(imageMean), float64(staticSize)/1e6, ms(nodeTime.image), float64(nodeSize)/1e6)
}

// startBench is Start for a benchmark (Start takes a *testing.T, for its
// log and clean-up order). The platform's log goes to a buffer that is shown, its last
// lines, only when the benchmark fails: a benchmark's log is always
// printed. An interrupt stops the sandboxes before the process exits, as
// the benchmark's clean-ups would not run.
func startBench(b *testing.B) *Env {
	b.Helper()
	need.Sandbox(b)
	data, err := os.MkdirTemp("", "noops-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(data) })
	logs := &lockedBuffer{}
	b.Cleanup(func() {
		if b.Failed() {
			lines := strings.Split(strings.TrimRight(logs.String(), "\n"), "\n")
			b.Logf("platform log, last %d lines:\n%s", min(len(lines), 200), strings.Join(lines[max(0, len(lines)-200):], "\n"))
		}
	})
	e := &Env{Data: data, cfg: config(b, data, logs, 30*time.Second)}
	e.Domain = e.cfg.Domain
	e.start(b)
	a := e.App
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := a.StopSandboxes(ctx); err != nil {
				b.Errorf("stopping sandboxes: %v", err)
			}
			if err := a.Stop(ctx); err != nil {
				b.Errorf("stopping platform: %v", err)
			}
		})
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "BenchmarkRebase: %v: stopping the sandboxes\n", s)
			stop()
			os.RemoveAll(data)
			os.Exit(1)
		case <-quit:
		}
	}()
	b.Cleanup(func() {
		signal.Stop(sig)
		close(quit)
		stop()
	})
	return e
}

// deployBench deploys dir as app and fails the benchmark if that fails.
func deployBench(b *testing.B, e *Env, dir, app string) {
	b.Helper()
	if _, log, err := e.Deploy(b, dir, app); err != nil {
		b.Fatalf("deploy %s: %v\nlog:\n%s", app, err, strings.Join(log, "\n"))
	}
	if code, body := e.Get(b, app, "/"); code != 200 {
		b.Fatalf("%s answers %d after its deploy, want 200: %q", app, code, body)
	}
}

// liveImageSize is the compressed size of the layers of app's live image.
func liveImageSize(b *testing.B, e *Env, app string) int64 {
	b.Helper()
	a, err := e.Client.App(context.Background(), app)
	if err != nil {
		b.Fatal(err)
	}
	rels, err := e.Client.Releases(context.Background(), app)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rels {
		if r.Number != a.Release {
			continue
		}
		d, err := v1.NewHash(r.Image)
		if err != nil {
			b.Fatal(err)
		}
		img, err := e.App.Images().Get(d)
		if err != nil {
			b.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for _, l := range ls {
			s, err := l.Size()
			if err != nil {
				b.Fatal(err)
			}
			n += s
		}
		return n
	}
	b.Fatalf("%s has no live release", app)
	return 0
}

// lockedBuffer is a bytes.Buffer safe for the platform's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
