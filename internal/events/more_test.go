package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"noops/internal/errkind"
)

func TestIdempotencyRecords(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	now := time.Now()
	i, err := h.bus.Idempotency(ctx, "shop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	i.now = func() time.Time { return now }
	out, _, rev, err := i.Begin(ctx, "key-1", "hash-a", time.Minute)
	if err != nil || out != Proceed || rev == 0 {
		t.Fatalf("first Begin = %v, %d, %v", out, rev, err)
	}
	if out, _, _, _ := i.Begin(ctx, "key-1", "hash-a", time.Minute); out != InProgress {
		t.Fatalf("Begin while in progress = %v", out)
	}
	if out, _, _, _ := i.Begin(ctx, "key-1", "hash-b", time.Minute); out != Conflict {
		t.Fatalf("Begin with another payload = %v", out)
	}
	i.Complete(ctx, "key-1", rev, Record{Hash: "hash-a", Status: 201, Header: http.Header{"X-Order": {"7"}}, Body: []byte("made")})
	out, rec, _, err := i.Begin(ctx, "key-1", "hash-a", time.Minute)
	if err != nil || out != Replay || rec.Status != 201 || string(rec.Body) != "made" || rec.Header.Get("X-Order") != "7" {
		t.Fatalf("Begin after completion = %v %+v %v", out, rec, err)
	}
	if out, _, _, _ := i.Begin(ctx, "key-1", "hash-b", time.Minute); out != Conflict {
		t.Fatalf("completed key, other payload = %v", out)
	}

	// A worker that died leaves its lease; once it runs out another takes over.
	if out, _, _, _ := i.Begin(ctx, "key-2", "h", time.Minute); out != Proceed {
		t.Fatal("key-2")
	}
	now = now.Add(2 * time.Minute)
	if out, _, _, _ := i.Begin(ctx, "key-2", "h", time.Minute); out != Proceed {
		t.Fatalf("expired lease: %v, want Proceed", out)
	}
	// Abandon lets a retry go.
	out, _, rev, _ = i.Begin(ctx, "key-3", "h", time.Minute)
	i.Abandon(ctx, "key-3", rev)
	if out2, _, _, _ := i.Begin(ctx, "key-3", "h", time.Minute); out != Proceed || out2 != Proceed {
		t.Fatalf("after Abandon: %v", out2)
	}
}

func TestDuplicateEventsAreDeliveredOnce(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	h.serve("app", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	h.set(fn("app", "t"))
	e := h.publish("t", "once")
	eventually(t, 10*time.Second, "delivered", func() bool { return calls.Load() == 1 })
	// The same event ID published again after JetStream's duplicate
	// window is still delivered once: the idempotency record has it.
	dup := Event{ID: e.ID, Topic: "t", Data: []byte("once")}
	if _, err := h.bus.js.PublishMsg(context.Background(), dup.withTime().natsMsgNoDedupe("ev.t")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d deliveries of one event ID, want 1", n)
	}
}

func (e Event) withTime() *Event { e.Time = time.Now(); return &e }

// natsMsgNoDedupe is the message without JetStream's Nats-Msg-Id, as if
// published outside the duplicate window.
func (e *Event) natsMsgNoDedupe(subject string) *nats.Msg {
	m := e.natsMsg(subject)
	m.Header.Del("Nats-Msg-Id")
	return m
}

func TestCronFires(t *testing.T) {
	h := newHarness(t)
	got := make(chan CronData, 10)
	h.serve("tick", func(w http.ResponseWriter, r *http.Request) {
		var d CronData
		_ = json.NewDecoder(r.Body).Decode(&d)
		if r.Header.Get("ce-type") == "dev.noops.cron.tick" {
			got <- d
		}
	})
	f := fn("tick")
	f.Crons = []string{"@every 1s"}
	h.set(f)
	var ticks []CronData
	deadline := time.After(10 * time.Second)
	for len(ticks) < 2 {
		select {
		case d := <-got:
			ticks = append(ticks, d)
		case <-deadline:
			t.Fatalf("ticks: %+v", ticks)
		}
	}
	if ticks[0].Schedule != "@every 1s" || !ticks[1].Scheduled.After(ticks[0].Scheduled) {
		t.Fatalf("ticks %+v", ticks)
	}
	bad := fn("tick")
	bad.Crons = []string{"61 * * * *"}
	if err := h.bus.SetFunction(context.Background(), bad); !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "does not parse") {
		t.Fatalf("bad cron: %v", err)
	}
}

func TestAsyncInvocation(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.serve("worker", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			<-release
		}
		if r.URL.Path == "/fail" {
			http.Error(w, "nope", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Got", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Custom")+" "+r.Header.Get(HeaderInvocation))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "done: %s", body)
	})
	h.set(fn("worker"))
	ctx := context.Background()
	req := httptest.NewRequest(http.MethodPut, "/jobs?x=1", nil)
	req.Header.Set("X-Custom", "yes")
	req.Header.Set("Prefer", "respond-async")
	inv, err := h.bus.Invoke(ctx, "worker", req, []byte("payload"))
	if err != nil || inv.Status != InvocationQueued || len(inv.ID) != 32 {
		t.Fatalf("Invoke = %+v, %v", inv, err)
	}
	var got Invocation
	eventually(t, 10*time.Second, "the invocation succeeded", func() bool {
		got, _ = h.bus.Invocation(ctx, inv.ID)
		return got.Status == InvocationSucceeded
	})
	if r := got.Response; r.Status != 201 || string(r.Body) != "done: payload" || r.Header.Get("X-Got") != "PUT /jobs?x=1 yes "+inv.ID || got.Attempts != 1 {
		t.Fatalf("result %+v %+v", got, r)
	}

	// A failing invocation is failed, with its error, and in the dead letters.
	inv2, _ := h.bus.Invoke(ctx, "worker", httptest.NewRequest(http.MethodPost, "/fail", nil), nil)
	eventually(t, 10*time.Second, "the invocation failed", func() bool {
		got, _ = h.bus.Invocation(ctx, inv2.ID)
		return got.Status == InvocationFailed
	})
	if !strings.Contains(got.Error, "HTTP 400: nope") {
		t.Fatalf("failed invocation %+v", got)
	}
	dls, _ := h.bus.DeadLetters(ctx, "worker", 0)
	if len(dls) != 1 || dls[0].Invocation != inv2.ID || dls[0].Origin != "invocation" {
		t.Fatalf("dead letters %+v", dls)
	}

	// Cancel: a running one is interrupted and stays cancelled.
	inv3, _ := h.bus.Invoke(ctx, "worker", httptest.NewRequest(http.MethodPost, "/slow", nil), nil)
	eventually(t, 10*time.Second, "running", func() bool { got, _ = h.bus.Invocation(ctx, inv3.ID); return got.Status == InvocationRunning })
	if c, err := h.bus.Cancel(ctx, inv3.ID); err != nil || c.Status != InvocationCancelled {
		t.Fatalf("Cancel = %+v, %v", c, err)
	}
	close(release)
	time.Sleep(300 * time.Millisecond)
	if got, _ = h.bus.Invocation(ctx, inv3.ID); got.Status != InvocationCancelled {
		t.Fatalf("after cancel: %+v", got)
	}
	if dls, _ := h.bus.DeadLetters(ctx, "worker", 0); len(dls) != 1 {
		t.Fatalf("a cancelled invocation is not a dead letter: %+v", dls)
	}
	if _, err := h.bus.Cancel(ctx, inv.ID); !errkind.Is(err, errkind.Conflict) {
		t.Fatalf("cancelling a finished invocation: %v", err)
	}
	if _, err := h.bus.Invocation(ctx, "nope"); !errkind.Is(err, errkind.NotFound) {
		t.Fatalf("unknown invocation: %v", err)
	}
	// An invocation of an app that has no function yet waits for it.
	inv4, _ := h.bus.Invoke(ctx, "later", httptest.NewRequest(http.MethodPost, "/", nil), []byte("x"))
	h.serve("later", func(w http.ResponseWriter, r *http.Request) {})
	h.set(fn("later"))
	eventually(t, 10*time.Second, "the waiting invocation ran", func() bool {
		got, _ = h.bus.Invocation(ctx, inv4.ID)
		return got.Status == InvocationSucceeded
	})
}

func TestOrderedPerKey(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	seen := map[string][]string{}
	failed := map[string]bool{}
	h.serve("ledger", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		key, v := r.Header.Get("ce-partitionkey"), string(b)
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(v, "-2") && !failed[v] { // the second of each key fails once
			failed[v] = true
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		seen[key] = append(seen[key], v)
	})
	f := fn("ledger", "acct.>")
	f.Settings.Ordered = true
	f.Settings.Concurrency = 4
	h.set(f)
	const keys, per = 6, 5
	for i := range per {
		for k := range keys {
			h.publish(fmt.Sprintf("acct.k%d", k), fmt.Sprintf("k%d-%d", k, i), func(e *Event) { e.PartitionKey = fmt.Sprintf("k%d", k) })
		}
	}
	eventually(t, 20*time.Second, "all delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range seen {
			n += len(v)
		}
		return n == keys*per
	})
	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		for i, v := range seen[key] {
			if v != fmt.Sprintf("%s-%d", key, i) {
				t.Fatalf("key %s delivered out of order: %v", key, seen[key])
			}
		}
	}
}

func TestRemoveFunction(t *testing.T) {
	h := newHarness(t)
	h.serve("gone", func(w http.ResponseWriter, r *http.Request) {})
	h.set(fn("gone", "t"))
	ctx := context.Background()
	if err := h.bus.RemoveFunction(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.bus.js.Consumer(ctx, streamEvents, consumerName("gone")); err == nil {
		t.Error("the consumer outlived its app")
	}
	if _, err := h.bus.js.KeyValue(ctx, bucketIdem+"gone"); err == nil {
		t.Error("the idempotency records outlived their app")
	}
	if err := h.bus.RemoveFunction(ctx, "never-was"); err != nil {
		t.Fatalf("removing an app that had no function: %v", err)
	}
}
