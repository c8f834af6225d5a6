// Command orders is the front of the orders example pipeline: a page with
// an order form and POST /orders, which validates an order and publishes
// it to the topic orders.created. The billing app takes it from there
// (see ../README.md).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

const (
	topic   = "orders.created"
	maxBody = 64 << 10
	maxItem = 100
	maxQty  = 1000
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>orders</title></head>
<body>
<h1>Place an order</h1>
<form method="post" action="/orders">
<label>Item <input name="item" maxlength="100" required value="coffee"></label>
<label>Quantity <input name="quantity" type="number" min="1" max="1000" value="1" required></label>
<button>Order</button>
</form>
<p>The order goes to the topic <code>orders.created</code>; the <b>billing</b> app prices it
and publishes <code>orders.billed</code>, which the <b>ledger</b> app records.
The answer here is the order's JSON receipt: its ID, the event's ID and the trace ID.</p>
</body></html>
`))

// order is the data of an orders.created event.
type order struct {
	OrderID  string    `json:"order_id"`
	Item     string    `json:"item"`
	Quantity int       `json:"quantity"`
	Created  time.Time `json:"created"`
}

// receipt is the answer to POST /orders.
type receipt struct {
	OrderID string `json:"order_id"`
	EventID string `json:"event_id"`
	TraceID string `json:"trace_id"`
}

type publishFunc func(context.Context, outEvent) (string, error)

// server handles the app's requests; publish sends events (a publisher's
// in production, a fake in tests).
type server struct {
	publish publishFunc
	now     func() time.Time
}

func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		_ = page.Execute(w, nil)
	})
	mux.HandleFunc("POST /orders", s.createOrder)
	return mux
}

func (s *server) createOrder(w http.ResponseWriter, r *http.Request) {
	item, qty, status, err := readOrder(w, r)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	o := order{OrderID: randomHex(8), Item: item, Quantity: qty, Created: s.now().UTC()}
	data, err := json.Marshal(o)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	tp := r.Header.Get("traceparent")
	tid := traceID(tp)
	if tid == "" {
		tp = "" // not a valid traceparent: do not pass it on
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	id, err := s.publish(ctx, outEvent{Topic: topic, Type: "com.example.order.created", PartitionKey: o.OrderID,
		TraceParent: tp, ContentType: "application/json", Data: data})
	if err != nil {
		log.Printf("orders: order %s not published: %v", o.OrderID, err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	log.Printf("orders: order %s (%d × %s) published as event %s, trace %q", o.OrderID, qty, item, id, tid)
	writeJSON(w, http.StatusAccepted, receipt{OrderID: o.OrderID, EventID: id, TraceID: tid})
}

// readOrder reads and validates the order from a JSON or form body; on
// error it also returns the status to answer.
func readOrder(w http.ResponseWriter, r *http.Request) (item string, qty int, status int, err error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" && mt != "application/x-www-form-urlencoded" {
		return "", 0, http.StatusUnsupportedMediaType, errors.New("send application/json or a form")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", 0, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", maxBody)
		}
		return "", 0, http.StatusBadRequest, err
	}
	if mt == "application/json" {
		var in struct {
			Item     string `json:"item"`
			Quantity int    `json:"quantity"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return "", 0, http.StatusBadRequest, fmt.Errorf("bad JSON: %v", err)
		}
		item, qty = in.Item, in.Quantity
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return "", 0, http.StatusBadRequest, fmt.Errorf("bad form: %v", err)
		}
		item = form.Get("item")
		if qty, err = strconv.Atoi(strings.TrimSpace(form.Get("quantity"))); err != nil {
			return "", 0, http.StatusBadRequest, errors.New("quantity must be a whole number")
		}
	}
	item = strings.TrimSpace(item)
	if n := utf8.RuneCountInString(item); n < 1 || n > maxItem || !utf8.ValidString(item) {
		return "", 0, http.StatusBadRequest, fmt.Errorf("item must be 1 to %d characters", maxItem)
	}
	if qty < 1 || qty > maxQty {
		return "", 0, http.StatusBadRequest, fmt.Errorf("quantity must be 1 to %d", maxQty)
	}
	return item, qty, 0, nil
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
	pub, err := newPublisher()
	if err != nil {
		log.Fatalf("orders: %v", err)
	}
	s := &server{publish: pub.publish, now: time.Now}
	srv := &http.Server{Addr: ":" + port, Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if pub.url == "" {
		log.Printf("orders: NOOPS_EVENTS_URL is not set: events are logged, not published")
	}
	log.Printf("orders: listening on :%s", port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	log.Printf("orders: stopped")
}
