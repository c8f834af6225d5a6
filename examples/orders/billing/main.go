// Command billing is the middle of the orders example pipeline: a
// function the platform calls with each orders.created event. It prices
// the order and publishes orders.billed, which the ledger app records
// (see ../README.md).
//
// Events arrive at least once, so billing remembers the event IDs it has
// handled and does not bill an order twice. Its answers tell the platform
// what to do: 2xx done, 400 a bad event (dead letters, no retry), 503
// try again later.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const (
	topic       = "orders.billed"
	maxBody     = 64 << 10
	maxSeen     = 100_000 // event IDs remembered for deduplication
	defaultCent = 500     // the price of an item not in prices
)

// prices is the price list, in euro cents per item.
var prices = map[string]int64{"coffee": 350, "tea": 300, "croissant": 220, "bagel": 280, "juice": 450}

// order is the data of an orders.created event.
type order struct {
	OrderID  string `json:"order_id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// bill is the data of an orders.billed event.
type bill struct {
	OrderID     string    `json:"order_id"`
	AmountCents int64     `json:"amount_cents"`
	Currency    string    `json:"currency"`
	Billed      time.Time `json:"billed"`
}

type publishFunc func(context.Context, outEvent) (string, error)

type server struct {
	publish publishFunc
	now     func() time.Time
	seen    *dedupe
}

func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /{$}", s.handleEvent)
	return mux
}

func (s *server) handleEvent(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("ce-id")
	if r.Header.Get("ce-specversion") != "1.0" || id == "" {
		answer(w, http.StatusBadRequest, "not a CloudEvent: ce-specversion 1.0 and ce-id are required")
		return
	}
	o, err := readOrder(w, r)
	if err != nil {
		log.Printf("billing: event %s refused: %v", id, err)
		answer(w, http.StatusBadRequest, err.Error()) // not retried: the event goes to the dead letters
		return
	}
	switch s.seen.begin(id) {
	case done:
		log.Printf("billing: event %s already handled (order %s): not billed again", id, o.OrderID)
		answer(w, http.StatusOK, "duplicate: already billed")
		return
	case busy:
		answer(w, http.StatusServiceUnavailable, "this event is being handled: retry later")
		return
	}
	b := bill{OrderID: o.OrderID, AmountCents: price(o.Item) * int64(o.Quantity), Currency: "EUR", Billed: s.now().UTC()}
	data, _ := json.Marshal(b)
	key := r.Header.Get("ce-partitionkey")
	if key == "" {
		key = o.OrderID
	}
	tp := r.Header.Get("traceparent")
	if traceID(tp) == "" {
		tp = ""
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	// The event's ID is derived from the order's: should billing publish
	// twice (a crash between publishing and answering), the ledger still
	// sees one event.
	evID, err := s.publish(ctx, outEvent{Topic: topic, Type: "com.example.order.billed", ID: "billed-" + id,
		PartitionKey: key, TraceParent: tp, ContentType: "application/json", Data: data})
	s.seen.end(id, err == nil)
	if err != nil {
		log.Printf("billing: order %s: %v (the platform will retry)", o.OrderID, err)
		answer(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	log.Printf("billing: order %s billed %d cents as event %s (trace %q)", o.OrderID, b.AmountCents, evID, traceID(tp))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"order_id": b.OrderID, "amount_cents": b.AmountCents, "event_id": evID})
}

// readOrder reads the event's data: a JSON order with an ID, an item and
// a quantity of 1 to 1000.
func readOrder(w http.ResponseWriter, r *http.Request) (order, error) {
	var o order
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return o, fmt.Errorf("data is %q, not JSON", mt)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(body, &o); err != nil {
		return o, fmt.Errorf("bad JSON: %v", err)
	}
	switch {
	case o.OrderID == "":
		return o, errors.New("order_id is missing")
	case strings.TrimSpace(o.Item) == "":
		return o, errors.New("item is missing")
	case o.Quantity < 1 || o.Quantity > 1000:
		return o, fmt.Errorf("quantity %d is not 1 to 1000", o.Quantity)
	}
	return o, nil
}

// price returns an item's unit price in cents.
func price(item string) int64 {
	if p, ok := prices[strings.ToLower(strings.TrimSpace(item))]; ok {
		return p
	}
	return defaultCent
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": msg})
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	pub, err := newPublisher()
	if err != nil {
		log.Fatalf("billing: %v", err)
	}
	if pub.url == "" {
		log.Printf("billing: NOOPS_EVENTS_URL is not set: events are logged, not published")
	}
	s := &server{publish: pub.publish, now: time.Now, seen: newDedupe(maxSeen)}
	srv := &http.Server{Addr: ":" + port, Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("billing: listening on :%s", port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	log.Printf("billing: stopped")
}
