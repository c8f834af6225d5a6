package events

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"noops/internal/spec"
)

// The crash test runs the event server and the deliveries in a child
// process (this test binary, re-executed) and kills it with SIGKILL in the
// middle of 10,000 deliveries; a new child on the same folder finishes
// them. The consumer is idempotent (it processes an event ID once, as
// examples/orders/billing does): every event must be processed exactly
// once, none lost, and the deliveries seen twice bounded by what was in
// flight at the kill.

const (
	crashEvents      = 10000
	crashConcurrency = 16
)

// TestCrashChild is the child: not a test of its own.
func TestCrashChild(t *testing.T) {
	dir, target := os.Getenv("NOOPS_CRASH_DIR"), os.Getenv("NOOPS_CRASH_TARGET")
	if dir == "" {
		return // run as a test: nothing to do (os/exec's helper-process pattern)
	}
	emb, err := StartEmbedded(EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("child")
	if err != nil {
		t.Fatal(err)
	}
	bus, err := Open(context.Background(), nc, Config{Target: HTTPTarget{URL: func(string) string { return target }}})
	if err != nil {
		t.Fatal(err)
	}
	retries := 5
	f := Function{App: "consumer", Topics: []string{"load"}, Settings: spec.Function{Concurrency: crashConcurrency, Retries: &retries,
		Timeout: spec.Duration(5 * time.Second), Backoff: spec.Duration(50 * time.Millisecond)}}
	if err := bus.SetFunction(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	// Publish every event with a fixed ID: a second child publishes them
	// again, and JetStream's duplicate window drops what it already has.
	for i := range crashEvents {
		e := Event{ID: fmt.Sprintf("e-%05d", i), Topic: "load", Data: []byte(strconv.Itoa(i))}
		if err := bus.Publish(context.Background(), &e, "/crash"); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("published")
	select {} // until killed
}

func TestKilledInTheMiddle(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 events")
	}
	var mu sync.Mutex
	processed := map[string]int{} // event ID → deliveries
	done := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("ce-id")
		mu.Lock()
		processed[id]++
		n := len(processed)
		mu.Unlock()
		if n == crashEvents {
			once.Do(func() { close(done) })
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	child := func() (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=10m")
		cmd.Env = append(os.Environ(), "NOOPS_CRASH_DIR="+dir, "NOOPS_CRASH_TARGET="+srv.URL)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() && strings.TrimSpace(sc.Text()) != "ready" {
		}
		return cmd, sc
	}
	first, _ := child()
	// Kill it with some events delivered and many not.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(processed)
		mu.Unlock()
		if n >= 3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d events delivered before the kill", n)
		}
		time.Sleep(time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	mu.Lock()
	atKill := len(processed)
	mu.Unlock()
	t.Logf("killed the server with SIGKILL after %d of %d events", atKill, crashEvents)

	second, _ := child()
	defer func() { _ = second.Process.Kill(); _ = second.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		mu.Lock()
		t.Fatalf("after the restart only %d of %d events were delivered", len(processed), crashEvents)
	}
	time.Sleep(500 * time.Millisecond) // late duplicates, if any, arrive
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for i := range crashEvents {
		id := fmt.Sprintf("e-%05d", i)
		switch c := processed[id]; {
		case c == 0:
			t.Errorf("event %s was lost", id)
		case c > 1:
			twice += c - 1
		}
	}
	if len(processed) != crashEvents {
		t.Errorf("%d distinct events delivered, want %d", len(processed), crashEvents)
	}
	// Only deliveries in flight at the kill (at most the concurrency, and
	// the pump's prefetch) may come again: the idempotent consumer
	// processes them once.
	if twice > 4*crashConcurrency {
		t.Errorf("%d deliveries came twice: more than were in flight at the kill", twice)
	}
	t.Logf("%d events processed exactly once by the idempotent consumer; %d deliveries repeated after the kill", crashEvents, twice)
}
