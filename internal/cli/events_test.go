package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"noops/internal/api"
	"noops/internal/apitype"
	"noops/internal/events"
)

// withBus gives the test server a real event bus; the app "fn" answers
// 500 to bodies that say "fail" and echoes the others.
func withBus(t *testing.T) func(*api.Config) {
	emb, err := events.StartEmbedded(events.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "fail" {
			http.Error(w, "cannot bill", http.StatusInternalServerError)
			return
		}
		w.Write(append([]byte("echo: "), b...))
	}))
	bus, err := events.Open(context.Background(), nc, events.Config{Target: events.HTTPTarget{URL: func(string) string { return fn.URL }}})
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	f := events.Function{App: "fn", Topics: []string{"orders.created"}}
	f.Settings.Retries = &zero
	if err := bus.SetFunction(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(context.Background()); nc.Close(); emb.Shutdown(); fn.Close() })
	return func(c *api.Config) { c.Bus = bus }
}

func TestEventsCommands(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, withBus(t))
	code, out, errOut := run(t, s.dir, "events", "publish", "orders.created", "fail", "--key", "o-1")
	if code != 0 || !strings.Contains(out, "published ") || !strings.Contains(out, " to orders.created (trace ") {
		t.Fatalf("events publish: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := run(t, s.dir, "events", "publish", "bad topic", "x"); code == 0 || !strings.Contains(errOut, "forbidden character") {
		t.Fatalf("bad topic: %d %q", code, errOut)
	}
	var dls []apitype.DeadLetter
	deadline := time.Now().Add(10 * time.Second)
	for len(dls) == 0 && time.Now().Before(deadline) {
		_, out, _ = run(t, s.dir, "events", "dlq", "list", "fn", "--json")
		_ = json.Unmarshal([]byte(out), &dls)
		time.Sleep(20 * time.Millisecond)
	}
	if len(dls) != 1 || !strings.Contains(dls[0].Error, "HTTP 500: cannot bill") || dls[0].Event.PartitionKey != "o-1" {
		t.Fatalf("dead letters %+v", dls)
	}
	seq := strings.TrimSpace(strings.Fields(func() string { _, o, _ := run(t, s.dir, "events", "dlq", "list", "fn"); return o }())[6])
	if code, out, _ := run(t, s.dir, "events", "dlq", "show", "fn", seq); code != 0 || !strings.Contains(out, "error:      HTTP 500: cannot bill") || !strings.Contains(out, "data (4 bytes):\nfail") {
		t.Fatalf("dlq show: %d %q", code, out)
	}
	if code, _, errOut := run(t, s.dir, "events", "dlq", "replay", "fn"); code == 0 || !strings.Contains(errOut, "--all") {
		t.Fatalf("replay without a choice: %d %q", code, errOut)
	}
	if code, out, _ := run(t, s.dir, "events", "dlq", "replay", "fn", "--all"); code != 0 || !strings.Contains(out, "replayed 1 dead letters of fn") {
		t.Fatalf("replay: %d %q", code, out)
	}

	if code, out, errOut := run(t, s.dir, "functions", "invoke", "fn", "hello"); code != 0 || out != "echo: hello" {
		t.Fatalf("functions invoke: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := run(t, s.dir, "functions", "invoke", "fn", "fail"); code == 0 || !strings.Contains(errOut, "fn answered 500") {
		t.Fatalf("a failing invoke must fail: %d %q", code, errOut)
	}
	code, out, _ = run(t, s.dir, "functions", "invoke", "fn", "later", "--async")
	if code != 0 || !strings.HasPrefix(out, "queued invocation ") {
		t.Fatalf("async invoke: %d %q", code, out)
	}
	id := strings.Fields(out)[2]
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(out, "succeeded") && time.Now().Before(deadline) {
		_, out, _ = run(t, s.dir, "functions", "status", id)
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out, "answer: 200 OK") || !strings.Contains(out, "echo: later") {
		t.Fatalf("functions status: %q", out)
	}
	if code, _, errOut := run(t, s.dir, "functions", "cancel", id); code == 0 || !strings.Contains(errOut, "already succeeded") {
		t.Fatalf("cancel of a finished invocation: %d %q", code, errOut)
	}
}
