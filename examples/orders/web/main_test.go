package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const testTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// fakeBus records what the app publishes; fail makes publishing fail.
type fakeBus struct {
	events []outEvent
	fail   error
}

func (f *fakeBus) publish(_ context.Context, e outEvent) (string, error) {
	if f.fail != nil {
		return "", f.fail
	}
	f.events = append(f.events, e)
	return "evt-1", nil
}

func newTestServer(bus *fakeBus) http.Handler {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return (&server{publish: bus.publish, now: func() time.Time { return now }}).routes()
}

func post(h http.Handler, ctype, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/orders", strings.NewReader(body))
	r.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestCreateOrderJSON(t *testing.T) {
	bus := &fakeBus{}
	w := post(newTestServer(bus), "application/json", `{"item":"coffee","quantity":3}`, "traceparent", testTrace)
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var rc receipt
	if err := json.Unmarshal(w.Body.Bytes(), &rc); err != nil {
		t.Fatal(err)
	}
	if len(rc.OrderID) != 16 || rc.EventID != "evt-1" || rc.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("receipt %+v", rc)
	}
	if len(bus.events) != 1 {
		t.Fatalf("published %d events", len(bus.events))
	}
	e := bus.events[0]
	if e.Topic != "orders.created" || e.Type != "com.example.order.created" || e.PartitionKey != rc.OrderID ||
		e.TraceParent != testTrace || e.ContentType != "application/json" {
		t.Fatalf("event %+v", e)
	}
	var o order
	if err := json.Unmarshal(e.Data, &o); err != nil {
		t.Fatal(err)
	}
	want := order{OrderID: rc.OrderID, Item: "coffee", Quantity: 3, Created: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	if o != want {
		t.Fatalf("data %+v, want %+v", o, want)
	}
	if !strings.Contains(string(e.Data), `"created":"2024-05-01T12:00:00Z"`) {
		t.Fatalf("data %s", e.Data)
	}
}

func TestCreateOrderFormWithoutTrace(t *testing.T) {
	bus := &fakeBus{}
	form := url.Values{"item": {"  tea  "}, "quantity": {"2"}}.Encode()
	w := post(newTestServer(bus), "application/x-www-form-urlencoded", form, "traceparent", "garbage")
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var rc receipt
	_ = json.Unmarshal(w.Body.Bytes(), &rc)
	if rc.TraceID != "" || bus.events[0].TraceParent != "" {
		t.Fatalf("receipt %+v, event %+v: an invalid traceparent must not be passed on", rc, bus.events[0])
	}
	var o order
	_ = json.Unmarshal(bus.events[0].Data, &o)
	if o.Item != "tea" || o.Quantity != 2 {
		t.Fatalf("order %+v", o)
	}
}

func TestCreateOrderRefused(t *testing.T) {
	for _, tc := range []struct {
		name, ctype, body string
		want              int
	}{
		{"empty item", "application/json", `{"item":" ","quantity":1}`, 400},
		{"long item", "application/json", `{"item":"` + strings.Repeat("x", 101) + `","quantity":1}`, 400},
		{"zero quantity", "application/json", `{"item":"tea"}`, 400},
		{"big quantity", "application/json", `{"item":"tea","quantity":1001}`, 400},
		{"fraction", "application/json", `{"item":"tea","quantity":1.5}`, 400},
		{"bad JSON", "application/json", `{"item":`, 400},
		{"bad form quantity", "application/x-www-form-urlencoded", "item=tea&quantity=many", 400},
		{"text", "text/plain", "tea", 415},
		{"too big", "application/json", `{"item":"` + strings.Repeat("x", maxBody) + `"}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &fakeBus{}
			w := post(newTestServer(bus), tc.ctype, tc.body)
			var e struct{ Error string }
			if w.Code != tc.want || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("status %d body %s, want %d and a JSON error", w.Code, w.Body, tc.want)
			}
			if len(bus.events) != 0 {
				t.Fatal("published a refused order")
			}
		})
	}
	// The longest item allowed counts characters, not bytes.
	if w := post(newTestServer(&fakeBus{}), "application/json", `{"item":"`+strings.Repeat("é", 100)+`","quantity":1000}`); w.Code != 202 {
		t.Fatalf("100 characters, 1000 items: status %d: %s", w.Code, w.Body)
	}
}

func TestPublishFailureIs503(t *testing.T) {
	w := post(newTestServer(&fakeBus{fail: errors.New("gateway down")}), "application/json", `{"item":"tea","quantity":1}`)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "gateway down") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

func TestPageAndHealth(t *testing.T) {
	h := newTestServer(&fakeBus{})
	for path, want := range map[string]string{"/": `action="/orders"`, "/healthz": "ok"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/orders", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /orders: %d", w.Code)
	}
}
