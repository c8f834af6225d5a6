// Command ledger is the end of the orders example pipeline: a function
// the platform calls with each orders.billed event. It keeps the last
// 1000 billed orders in memory and shows them at GET / (a table) and GET
// /records (JSON), with the trace ID that ties each one to the request
// that placed the order (see ../README.md).
//
// Events arrive at least once, so the ledger records an event ID once.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log"
	"mime"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	maxRecords = 1000    // records kept, the oldest dropped first
	maxSeen    = 100_000 // event IDs remembered for deduplication
	maxBody    = 64 << 10
)

// record is one billed order as the ledger saw it.
type record struct {
	OrderID     string    `json:"order_id"`
	AmountCents int64     `json:"amount_cents"`
	Currency    string    `json:"currency"`
	EventID     string    `json:"event_id"`
	TraceID     string    `json:"trace_id"`
	Received    time.Time `json:"received"`
}

// Amount is the amount in units of the currency: "10.50".
func (r record) Amount() string {
	return fmt.Sprintf("%d.%02d", r.AmountCents/100, r.AmountCents%100)
}

// ledger holds the records, newest first, and the event IDs seen.
type ledger struct {
	mu      sync.Mutex
	now     func() time.Time
	records []record
	seen    map[string]struct{}
	ids     []string // seen IDs, oldest first: a ring of maxSeen once full
	next    int
}

func newLedger(now func() time.Time) *ledger {
	return &ledger{now: now, seen: map[string]struct{}{}}
}

// add records r unless its event was recorded before; it reports whether
// it did.
func (l *ledger) add(r record) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.seen[r.EventID]; dup {
		return false
	}
	l.seen[r.EventID] = struct{}{}
	if len(l.ids) < maxSeen {
		l.ids = append(l.ids, r.EventID)
	} else {
		delete(l.seen, l.ids[l.next])
		l.ids[l.next] = r.EventID
		l.next = (l.next + 1) % maxSeen
	}
	l.records = slices.Insert(l.records, 0, r)
	if len(l.records) > maxRecords {
		l.records = l.records[:maxRecords]
	}
	return true
}

// list returns a copy of the records, newest first.
func (l *ledger) list() []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]record{}, l.records...) // [] rather than null in JSON
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>ledger</title>
<style>td,th{padding:2px 8px;text-align:left}td.n{text-align:right}</style></head>
<body>
<h1>Ledger</h1>
<p>Billed orders, newest first (the last {{.Max}} are kept in memory). JSON: <a href="/records">/records</a>.</p>
<table>
<tr><th>Received</th><th>Order</th><th>Amount</th><th>Event</th><th>Trace</th></tr>
{{range .Records}}<tr><td>{{.Received.Format "2006-01-02 15:04:05"}}</td><td><code>{{.OrderID}}</code></td>
<td class="n">{{.Amount}} {{.Currency}}</td><td><code>{{.EventID}}</code></td><td><code>{{.TraceID}}</code></td></tr>
{{else}}<tr><td colspan="5">No billed orders yet: place one with the orders app.</td></tr>
{{end}}</table>
</body></html>
`))

func (l *ledger) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		_ = page.Execute(w, map[string]any{"Records": l.list(), "Max": maxRecords})
	})
	mux.HandleFunc("GET /records", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]record{"records": l.list()})
	})
	mux.HandleFunc("POST /{$}", l.handleEvent)
	return mux
}

// handleEvent records one orders.billed event. A bad event is answered
// 400, which the platform does not retry.
func (l *ledger) handleEvent(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("ce-id")
	if r.Header.Get("ce-specversion") != "1.0" || id == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "not a CloudEvent: ce-specversion 1.0 and ce-id are required"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("data is %q, not JSON", mt)})
		return
	}
	var b struct {
		OrderID     string `json:"order_id"`
		AmountCents int64  `json:"amount_cents"`
		Currency    string `json:"currency"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = json.Unmarshal(body, &b)
	}
	if err == nil && (b.OrderID == "" || b.Currency == "" || b.AmountCents < 0) {
		err = fmt.Errorf("order_id, currency and a non-negative amount_cents are required")
	}
	if err != nil {
		log.Printf("ledger: event %s refused: %v", id, err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	rec := record{OrderID: b.OrderID, AmountCents: b.AmountCents, Currency: b.Currency, EventID: id,
		TraceID: traceID(r.Header.Get("traceparent")), Received: l.now().UTC()}
	if !l.add(rec) {
		log.Printf("ledger: event %s already recorded", id)
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate: already recorded"})
		return
	}
	log.Printf("ledger: order %s: %d cents %s (event %s, trace %q)", rec.OrderID, rec.AmountCents, rec.Currency, id, rec.TraceID)
	writeJSON(w, http.StatusOK, map[string]string{"status": "recorded"})
}

// traceID returns the trace ID of a W3C traceparent
// ("00-<32 hex>-<16 hex>-<2 hex>"), or "" when tp is not a valid one.
func traceID(tp string) string {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 ||
		(parts[0] == "00" && len(parts) != 4) {
		return ""
	}
	for _, p := range parts[:4] {
		if _, err := hex.DecodeString(p); err != nil || strings.ToLower(p) != p {
			return ""
		}
	}
	if parts[1] == strings.Repeat("0", 32) || parts[2] == strings.Repeat("0", 16) {
		return ""
	}
	return parts[1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	l := newLedger(time.Now)
	srv := &http.Server{Addr: ":" + port, Handler: l.routes(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("ledger: listening on :%s", port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	log.Printf("ledger: stopped")
}
