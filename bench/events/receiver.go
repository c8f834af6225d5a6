package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"noops/internal/events"
)

// base is the origin of the benchmark's clock: since() is monotonic, and
// publishers and handlers share it (one process).
var base = time.Now()

func since() time.Duration { return time.Since(base) }

// An event's data: the run ID, the sequence number in the run, the
// monotonic time of the publish call (ns since base), then padding.
const headerLen = 4 + 8 + 8

func putHeader(b []byte, run uint32, seq uint64, t0 time.Duration) {
	binary.LittleEndian.PutUint32(b, run)
	binary.LittleEndian.PutUint64(b[4:], seq)
	binary.LittleEndian.PutUint64(b[12:], uint64(t0))
}

// tally is what the handler saw of one run.
type tally struct {
	run  uint32
	n    int
	seen []atomic.Uint32
	lat  []int64 // ns by sequence number, written once each
	got  atomic.Int64
	end  atomic.Int64 // since(), when the last event came in
	done chan struct{}
}

func newTally(run uint32, n int) *tally {
	return &tally{run: run, n: n, seen: make([]atomic.Uint32, n), lat: make([]int64, n), done: make(chan struct{})}
}

// receiver is a side's handler: it checks and counts the events of the
// current run, and remembers every anomaly.
type receiver struct {
	cur   atomic.Pointer[tally]
	bad   atomic.Int64 // anomalies of any run
	mu    sync.Mutex
	first string // the first anomaly
	conns atomic.Int64
}

func (r *receiver) fail(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if r.bad.Add(1) == 1 {
		r.mu.Lock()
		r.first = err.Error()
		r.mu.Unlock()
	}
	return err
}

// anomalies returns the count of anomalies and the first.
func (r *receiver) anomalies() (int64, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad.Load(), r.first
}

// record counts one event received at now.
func (r *receiver) record(data []byte, now time.Duration) error {
	if len(data) < headerLen {
		return r.fail("a body of %d bytes: not an event of the benchmark", len(data))
	}
	run := binary.LittleEndian.Uint32(data)
	seq := binary.LittleEndian.Uint64(data[4:])
	t0 := int64(binary.LittleEndian.Uint64(data[12:]))
	t := r.cur.Load()
	switch {
	case t == nil || t.run != run:
		return r.fail("event %d of run %d arrived outside its run (a late duplicate)", seq, run)
	case seq >= uint64(t.n):
		return r.fail("event %d of run %d: the run has %d", seq, run, t.n)
	}
	if c := t.seen[seq].Add(1); c != 1 {
		return r.fail("event %d of run %d handled %d times", seq, run, c)
	}
	t.lat[seq] = int64(now) - t0
	if t.got.Add(1) == int64(t.n) {
		t.end.Store(int64(since()))
		close(t.done)
	}
	return nil
}

// ServeHTTP is the function: it reads the event and answers 200 at once
// (400 to anything it does not expect, which fails the run).
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	now := since()
	if err != nil {
		http.Error(w, r.fail("reading an event: %v", err).Error(), http.StatusBadRequest)
		return
	}
	if a := req.Header.Get(events.HeaderAttempt); a != "" && a != "1" {
		// A retry: an earlier attempt failed or timed out.
		_ = r.fail("a delivery with %s: %s", events.HeaderAttempt, a)
	}
	if err := r.record(body, now); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// handler is a receiver served over HTTP on 127.0.0.1.
type handler struct {
	*receiver
	url string
	srv *http.Server
}

func startHandler(rcv *receiver) (*handler, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &handler{receiver: rcv, url: "http://" + ln.Addr().String()}
	h.srv = &http.Server{Handler: rcv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				rcv.conns.Add(1)
			}
		}}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

// newClient is the HTTP client of both sides' deliveries: keep-alive,
// with an idle connection per delivery in flight (http.DefaultClient
// keeps 2 per host and would open and close connections all along).
func newClient(concurrency int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * concurrency,
		MaxIdleConnsPerHost: 2 * concurrency,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}}
}
