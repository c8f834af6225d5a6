package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const testTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// deliver POSTs an orders.billed event to the app as the platform does.
func deliver(h http.Handler, id, ctype, data, traceparent string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/", strings.NewReader(data))
	r.Header.Set("ce-specversion", "1.0")
	r.Header.Set("ce-id", id)
	r.Header.Set("ce-source", "noops/apps/billing")
	r.Header.Set("ce-type", "com.example.order.billed")
	r.Header.Set("ce-time", testNow.Format(time.RFC3339))
	r.Header.Set("ce-subject", "orders.billed")
	r.Header.Set("Content-Type", ctype)
	if traceparent != "" {
		r.Header.Set("traceparent", traceparent)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func billed(order string, cents int) string {
	return fmt.Sprintf(`{"order_id":%q,"amount_cents":%d,"currency":"EUR","billed":"2024-05-01T12:00:00Z"}`, order, cents)
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, w.Code, w.Body)
	}
	return w
}

func records(t *testing.T, h http.Handler) []record {
	t.Helper()
	var out struct{ Records []record }
	if err := json.Unmarshal(get(t, h, "/records").Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out.Records
}

func TestRecordAndList(t *testing.T) {
	h := newLedger(func() time.Time { return testNow }).routes()
	if w := deliver(h, "billed-e1", "application/json", billed("a1", 1050), testTrace); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if w := deliver(h, "billed-e2", "application/json; charset=utf-8", billed("b2", 300), ""); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := records(t, h)
	want := []record{
		{OrderID: "b2", AmountCents: 300, Currency: "EUR", EventID: "billed-e2", Received: testNow},
		{OrderID: "a1", AmountCents: 1050, Currency: "EUR", EventID: "billed-e1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Received: testNow},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records\n%+v\nwant\n%+v", got, want)
	}
	html := get(t, h, "/").Body.String()
	for _, s := range []string{"<code>a1</code>", "10.50 EUR", "3.00 EUR", "4bf92f3577b34da6a3ce929d0e0e4736"} {
		if !strings.Contains(html, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}

func TestDuplicatesRecordedOnce(t *testing.T) {
	h := newLedger(time.Now).routes()
	for i := 0; i < 3; i++ {
		if w := deliver(h, "billed-e1", "application/json", billed("a1", 100), testTrace); w.Code != http.StatusOK {
			t.Fatalf("delivery %d: status %d", i, w.Code)
		}
	}
	if n := len(records(t, h)); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
}

func TestKeepsNewest1000(t *testing.T) {
	l := newLedger(time.Now)
	h := l.routes()
	for i := 0; i < maxRecords+5; i++ {
		deliver(h, fmt.Sprint("e", i), "application/json", billed(fmt.Sprint("o", i), i), "")
	}
	got := records(t, h)
	if len(got) != maxRecords || got[0].OrderID != "o1004" || got[len(got)-1].OrderID != "o5" {
		t.Fatalf("%d records, first %s, last %s", len(got), got[0].OrderID, got[len(got)-1].OrderID)
	}
	// Event IDs are remembered beyond the records kept.
	deliver(h, "e0", "application/json", billed("o0", 0), "")
	if got := records(t, h); len(got) != maxRecords || got[0].OrderID != "o1004" {
		t.Fatalf("an old event ID was recorded again: first record %s", got[0].OrderID)
	}
}

func TestBadEventsAre400(t *testing.T) {
	h := newLedger(time.Now).routes()
	for _, tc := range []struct{ name, ctype, data string }{
		{"not JSON", "text/plain", "a1 10.50"},
		{"malformed", "application/json", `{"order_id":`},
		{"no order", "application/json", `{"amount_cents":1,"currency":"EUR"}`},
		{"no currency", "application/json", `{"order_id":"a","amount_cents":1}`},
		{"negative", "application/json", billed("a", -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := deliver(h, "e-"+tc.name, tc.ctype, tc.data, ""); w.Code != http.StatusBadRequest {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
		})
	}
	if w := deliver(h, "", "application/json", billed("a", 1), ""); w.Code != http.StatusBadRequest {
		t.Fatalf("no ce-id: status %d", w.Code)
	}
	if n := len(records(t, h)); n != 0 {
		t.Fatalf("%d records", n)
	}
}

func TestPageEmptyAndHealth(t *testing.T) {
	h := newLedger(time.Now).routes()
	if !strings.Contains(get(t, h, "/").Body.String(), "No billed orders yet") {
		t.Fatal("empty page")
	}
	if get(t, h, "/healthz").Body.String() != "ok\n" {
		t.Fatal("healthz")
	}
	if !strings.Contains(get(t, h, "/records").Body.String(), `"records":[]`) {
		t.Fatalf("empty records should be [], not null: %s", get(t, h, "/records").Body)
	}
}

func TestTraceID(t *testing.T) {
	for tp, want := range map[string]string{
		testTrace: "4bf92f3577b34da6a3ce929d0e0e4736",
		"":        "", "00-abc-def-01": "",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": "",
	} {
		if got := traceID(tp); got != want {
			t.Errorf("traceID(%q) = %q, want %q", tp, got, want)
		}
	}
}
