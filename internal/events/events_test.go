package events

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/observe/trace"
	"noops/internal/spec"
)

func TestPublishDeliversCloudEvent(t *testing.T) {
	h := newHarness(t)
	got := make(chan *http.Request, 1)
	bodies := make(chan string, 1)
	h.serve("billing", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- string(b)
	})
	h.set(fn("billing", "orders.*"))
	tp := trace.New()
	e := h.publish("orders.created", `{"id":1}`, func(e *Event) {
		e.TraceParent, e.PartitionKey, e.ContentType = tp.String(), "order-1", "application/json"
	})
	h.publish("other.created", "not for billing")
	var r *http.Request
	select {
	case r = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	if b := <-bodies; b != `{"id":1}` {
		t.Errorf("body %q", b)
	}
	want := map[string]string{"ce-specversion": "1.0", "ce-id": e.ID, "ce-source": "/test", "ce-type": "dev.noops.event",
		"ce-subject": "orders.created", "ce-partitionkey": "order-1", "Content-Type": "application/json", HeaderAttempt: "1"}
	for k, v := range want {
		if g := r.Header.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	got2, ok := trace.Parse(r.Header.Get("traceparent"))
	if !ok || got2.TraceID != tp.TraceID || got2.SpanID == tp.SpanID {
		t.Errorf("traceparent %q: want trace %s with a new span", r.Header.Get("traceparent"), tp.TraceIDString())
	}
	select {
	case r := <-got:
		t.Fatalf("a second delivery: %s", r.Header.Get("ce-subject"))
	case <-time.After(300 * time.Millisecond):
	}
}

func TestPublishRefusesBadInput(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{Event{Topic: "orders created"}, "forbidden character"},
		{Event{Topic: "orders.*"}, "forbidden character"},
		{Event{Topic: "orders..created"}, "empty token"},
		{Event{Topic: ""}, "empty"},
		{Event{Topic: "big", Data: make([]byte, DefaultMaxEventSize+1)}, "over the limit"},
		{Event{Topic: "x", Type: "a\nb"}, "control character"},
	} {
		err := h.bus.Publish(context.Background(), &tc.e, "/test")
		if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Publish(%.30q) = %v, want Invalid with %q", tc.e.Topic, err, tc.want)
		}
	}
}

func TestRetriesThenDeadLetterThenReplay(t *testing.T) {
	h := newHarness(t)
	var fail atomic.Bool
	fail.Store(true)
	var mu sync.Mutex
	var times []time.Time
	h.serve("billing", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if fail.Load() {
			http.Error(w, "database is down", http.StatusInternalServerError)
		}
	})
	var dead atomic.Int32
	h.bus.cfg.OnDeadLetter = func(DeadLetter) { dead.Add(1) }
	outcomes := map[string]int{}
	h.bus.cfg.OnDelivery = func(app, outcome string, d time.Duration) {
		mu.Lock()
		outcomes[app+" "+outcome]++
		mu.Unlock()
	}
	var published atomic.Int32
	h.bus.cfg.OnPublish = func() { published.Add(1) }
	h.set(fn("billing", "orders.created"))
	e := h.publish("orders.created", "order 7")
	eventually(t, 10*time.Second, "the event reached the dead letters", func() bool { return dead.Load() == 1 })
	mu.Lock()
	if len(times) != 3 {
		t.Fatalf("%d attempts, want 3 (1 + 2 retries)", len(times))
	}
	if d1, d2 := times[1].Sub(times[0]), times[2].Sub(times[1]); d1 < 35*time.Millisecond || d2 < 70*time.Millisecond {
		t.Errorf("no backoff: waits %s then %s (base 50ms, doubled, ±20%%)", d1, d2)
	}
	mu.Unlock()
	dls, err := h.bus.DeadLetters(context.Background(), "billing", 0)
	if err != nil || len(dls) != 1 {
		t.Fatalf("DeadLetters = %v, %v", dls, err)
	}
	d := dls[0]
	if d.Event.ID != e.ID || string(d.Event.Data) != "order 7" || d.Attempts != 3 || d.Origin != "orders.created" ||
		!strings.Contains(d.Error, "HTTP 500: database is down") {
		t.Fatalf("dead letter %+v", d)
	}
	if one, err := h.bus.DeadLetter(context.Background(), "billing", d.Seq); err != nil || one.Event.ID != e.ID {
		t.Fatalf("DeadLetter(%d) = %+v, %v", d.Seq, one, err)
	}
	if _, err := h.bus.DeadLetter(context.Background(), "other", d.Seq); !errkind.Is(err, errkind.NotFound) {
		t.Fatalf("another app's dead letter: %v", err)
	}

	fail.Store(false)
	if n, err := h.bus.Replay(context.Background(), "billing", []uint64{d.Seq}); n != 1 || err != nil {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	eventually(t, 10*time.Second, "the replay was delivered", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) == 4 })
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	if len(times) != 4 {
		t.Fatalf("%d deliveries after the replay, want exactly 4", len(times))
	}
	mu.Unlock()
	if dls, _ := h.bus.DeadLetters(context.Background(), "billing", 0); len(dls) != 0 {
		t.Fatalf("the replayed dead letter is still there: %+v", dls)
	}
	mu.Lock()
	want := map[string]int{"billing retried": 2, "billing dead_lettered": 1, "billing delivered": 1}
	if len(outcomes) != len(want) || outcomes["billing retried"] != 2 || outcomes["billing dead_lettered"] != 1 || outcomes["billing delivered"] != 1 {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}
	mu.Unlock()
	if published.Load() != 1 {
		t.Errorf("%d publications counted, want 1", published.Load())
	}
	if b := h.bus.Backlog(context.Background()); b["billing"] != 0 {
		t.Errorf("backlog %v after everything was delivered", b)
	}
}

func TestClientErrorsAndTimeouts(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	h.serve("strict", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "bad order", http.StatusUnprocessableEntity)
	})
	h.serve("slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // from now on the server sees the client go
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	dead := make(chan DeadLetter, 4)
	h.bus.cfg.OnDeadLetter = func(d DeadLetter) { dead <- d }
	h.set(fn("strict", "a"))
	slow := fn("slow", "b")
	slow.Settings.Timeout = spec200ms()
	zero := 0
	slow.Settings.Retries = &zero
	h.set(slow)
	h.publish("a", "x")
	h.publish("b", "y")
	got := map[string]DeadLetter{}
	for range 2 {
		select {
		case d := <-dead:
			got[d.App] = d
		case <-time.After(10 * time.Second):
			t.Fatalf("dead letters so far: %+v", got)
		}
	}
	if d := got["strict"]; d.Attempts != 1 || !strings.Contains(d.Error, "HTTP 422: bad order") || calls.Load() != 1 {
		t.Errorf("a 4xx must not be retried: %+v, %d calls", d, calls.Load())
	}
	if d := got["slow"]; !strings.Contains(d.Error, "no answer within the timeout of 200ms") {
		t.Errorf("timeout: %+v", d)
	}
}

func TestRedeliveryAfterRestart(t *testing.T) {
	h := newHarness(t)
	started := make(chan struct{}, 1)
	h.serve("app", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case started <- struct{}{}:
		default:
		}
		<-r.Context().Done() // never answers before the restart
	})
	f := fn("app", "t")
	f.Settings.Timeout = spec200ms()
	h.set(f)
	e := h.publish("t", "survives")
	<-started
	h.restart()
	got := make(chan string, 10)
	h.serve("app", func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("ce-id") })
	h.set(f)
	select {
	case id := <-got:
		if id != e.ID {
			t.Fatalf("redelivered %s, want %s", id, e.ID)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the unacknowledged event was not delivered after the restart")
	}
}

func spec200ms() spec.Duration { return spec.Duration(200 * time.Millisecond) }
