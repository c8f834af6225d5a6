package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// fakeBus records what the app publishes; fail makes publishing fail.
type fakeBus struct {
	mu     sync.Mutex
	events []outEvent
	fail   error
	// If block is set, publish says so on started, then waits for block.
	started, block chan struct{}
}

func (f *fakeBus) publish(_ context.Context, e outEvent) (string, error) {
	if f.block != nil {
		f.started <- struct{}{}
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	f.events = append(f.events, e)
	return fmt.Sprintf("evt-%d", len(f.events)), nil
}

func newTestServer(bus *fakeBus) *server {
	return &server{publish: bus.publish, now: func() time.Time { return testNow }, seen: newDedupe(maxSeen)}
}

// deliver POSTs an event to the app as the platform does.
func deliver(s *server, id, ctype, data string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/", strings.NewReader(data))
	r.Header.Set("ce-specversion", "1.0")
	r.Header.Set("ce-id", id)
	r.Header.Set("ce-source", "noops/apps/orders")
	r.Header.Set("ce-type", "com.example.order.created")
	r.Header.Set("ce-time", testNow.Format(time.RFC3339))
	r.Header.Set("ce-subject", "orders.created")
	r.Header.Set("ce-partitionkey", "key-1")
	r.Header.Set("traceparent", testTrace)
	r.Header.Set("Content-Type", ctype)
	w := httptest.NewRecorder()
	s.routes().ServeHTTP(w, r)
	return w
}

const created = `{"order_id":"a1b2","item":"Coffee","quantity":3,"created":"2024-05-01T11:59:00Z"}`

func TestBill(t *testing.T) {
	bus := &fakeBus{}
	w := deliver(newTestServer(bus), "e1", "application/json", created)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if len(bus.events) != 1 {
		t.Fatalf("published %d events", len(bus.events))
	}
	e := bus.events[0]
	if e.Topic != "orders.billed" || e.Type != "com.example.order.billed" || e.ID != "billed-e1" || e.PartitionKey != "key-1" ||
		e.TraceParent != testTrace || e.ContentType != "application/json" {
		t.Fatalf("event %+v", e)
	}
	var b bill
	if err := json.Unmarshal(e.Data, &b); err != nil {
		t.Fatal(err)
	}
	if want := (bill{OrderID: "a1b2", AmountCents: 3 * 350, Currency: "EUR", Billed: testNow}); b != want {
		t.Fatalf("bill %+v, want %+v", b, want)
	}
}

func TestPrice(t *testing.T) {
	if price(" TEA ") != 300 || price("unicorn") != defaultCent {
		t.Fatal("price list")
	}
}

func TestDuplicateIsNotBilledTwice(t *testing.T) {
	bus := &fakeBus{}
	s := newTestServer(bus)
	for i := 0; i < 3; i++ {
		if w := deliver(s, "e1", "application/json", created); w.Code != http.StatusOK {
			t.Fatalf("delivery %d: status %d: %s", i, w.Code, w.Body)
		}
	}
	if w := deliver(s, "e2", "application/json", created); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if len(bus.events) != 2 {
		t.Fatalf("published %d events, want 2 (one per event ID)", len(bus.events))
	}
}

func TestDuplicateWhileBusyIsRetried(t *testing.T) {
	bus := &fakeBus{started: make(chan struct{}), block: make(chan struct{})}
	s := newTestServer(bus)
	first := make(chan int)
	go func() { first <- deliver(s, "e1", "application/json", created).Code }()
	<-bus.started // e1 is being handled
	if w := deliver(s, "e1", "application/json", created); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("concurrent duplicate: status %d", w.Code)
	}
	close(bus.block)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first delivery: status %d", code)
	}
}

func TestPublishFailureIsRetried(t *testing.T) {
	bus := &fakeBus{fail: errors.New("gateway down")}
	s := newTestServer(bus)
	if w := deliver(s, "e1", "application/json", created); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	bus.fail = nil // the platform's retry succeeds and bills once
	if w := deliver(s, "e1", "application/json", created); w.Code != http.StatusOK || len(bus.events) != 1 {
		t.Fatalf("retry: status %d, %d events", w.Code, len(bus.events))
	}
}

func TestBadEventsAre400(t *testing.T) {
	for _, tc := range []struct{ name, ctype, data string }{
		{"not JSON", "text/plain", "coffee"},
		{"malformed", "application/json", `{"order_id":`},
		{"no order ID", "application/json", `{"item":"tea","quantity":1}`},
		{"no item", "application/json", `{"order_id":"a","quantity":1}`},
		{"no quantity", "application/json", `{"order_id":"a","item":"tea"}`},
		{"quantity as text", "application/json", `{"order_id":"a","item":"tea","quantity":"2"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &fakeBus{}
			if w := deliver(newTestServer(bus), "e1", tc.ctype, tc.data); w.Code != http.StatusBadRequest || len(bus.events) != 0 {
				t.Fatalf("status %d, %d events: %s", w.Code, len(bus.events), w.Body)
			}
		})
	}
	// Not a CloudEvent at all.
	s := newTestServer(&fakeBus{})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", strings.NewReader(created))
	r.Header.Set("Content-Type", "application/json")
	s.routes().ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("no ce- headers: status %d", w.Code)
	}
}

func TestDedupeForgetsOldest(t *testing.T) {
	d := newDedupe(2)
	for _, id := range []string{"a", "b", "c"} {
		if d.begin(id) != fresh {
			t.Fatalf("%s not fresh", id)
		}
		d.end(id, true)
	}
	if d.begin("a") != fresh || d.begin("b") != done || d.begin("c") != done || len(d.done) != 2 {
		t.Fatalf("done %v", d.done)
	}
}

func TestHealthz(t *testing.T) {
	w := httptest.NewRecorder()
	newTestServer(&fakeBus{}).routes().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != 200 || w.Body.String() != "ok\n" {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
}
