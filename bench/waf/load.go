package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// client dials the servers: TLS 1.3, HTTP/1.1, the server verified with
// the benchmark's CA.
type client struct {
	roots *x509.CertPool
}

// conn is one keep-alive TLS connection with HTTP/1.1 on it.
type conn struct {
	addr string
	tc   *tls.Conn
	br   *bufio.Reader
}

func (cl *client) dial(addr string) (*conn, error) {
	cfg := &tls.Config{RootCAs: cl.roots, ServerName: host, NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	if cs := c.ConnectionState(); cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != "http/1.1" {
		c.Close()
		return nil, fmt.Errorf("%s negotiated TLS %x and %q: want TLS 1.3 and http/1.1", addr, cs.Version, cs.NegotiatedProtocol)
	}
	return &conn{addr: addr, tc: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

// do sends req and reads the whole answer; closed says the server will
// take no further request on the connection.
func (c *conn) do(req []byte, deadline time.Time) (status int, body []byte, closed bool, err error) {
	if err := c.tc.SetDeadline(deadline); err != nil {
		return 0, nil, false, err
	}
	if _, err := c.tc.Write(req); err != nil {
		return 0, nil, false, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	return resp.StatusCode, body, resp.Close, err
}

// once sends one request on a connection of its own and returns the
// whole answer.
func (cl *client) once(addr string, req []byte) (int, []byte, error) {
	c, err := cl.dial(addr)
	if err != nil {
		return 0, nil, err
	}
	defer c.tc.Close()
	if err := c.tc.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, nil, err
	}
	if _, err := c.tc.Write(req); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, err
}

// sample is one measurement of one server under one kind of request.
type sample struct {
	Requests   int
	Seconds    float64
	RPS        float64
	Hist       *histogram
	ServerCPU  float64     // seconds of the server process's CPU while measuring
	NonOK      map[int]int // answers other than 200, warm-up included
	FirstBad   string      // the first of them, abridged
	Reconnects int         // connections the server closed, reopened
}

// maxPhase bounds a warm-up or measurement stretched to see enough
// answers.
const maxPhase = time.Minute

// requestTimeout bounds one request and its answer: with 32 connections
// on a 64 KB form, an answer may wait for 31 others of ~1 s of CPU each.
const requestTimeout = 3 * time.Minute

// measure opens conns connections to addr and sends req on each back to
// back: for warmup, and until every connection could have had an answer
// (conns answers), then it measures for dur, and until conns answers came
// in the measurement (a WAF can take 100 ms or more on a large form), at
// most maxPhase each. Counted are the 200s that complete while measuring.
// during, when set, runs when the measurement starts (a profile). pid is
// the server's, for its CPU time.
func (cl *client) measure(addr string, pid int, req []byte, conns int, warmup, dur time.Duration, during func()) (sample, error) {
	cs := make([]*conn, conns)
	for i := range cs {
		c, err := cl.dial(addr)
		if err != nil {
			for _, c := range cs[:i] {
				c.tc.Close()
			}
			return sample{}, err
		}
		cs[i] = c
	}
	const (
		warming = iota
		measuring
		stopped
	)
	var (
		phase    atomic.Int32
		answered atomic.Int64 // answers of any phase
		measured atomic.Int64 // 200s counted
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		s        = sample{Hist: new(histogram), NonOK: map[int]int{}}
	)
	for i := range cs {
		wg.Go(func() {
			h := new(histogram)
			nonOK := map[int]int{}
			var firstBad string
			n, reconnects := 0, 0
			var err error
			for {
				if phase.Load() == stopped {
					break
				}
				t0 := time.Now()
				var status int
				var body []byte
				var closed bool
				status, body, closed, err = cs[i].do(req, t0.Add(requestTimeout))
				if err != nil {
					err = fmt.Errorf("%s: %w", addr, err)
					break
				}
				elapsed := time.Since(t0)
				answered.Add(1)
				if status != http.StatusOK {
					nonOK[status]++
					if firstBad == "" {
						firstBad = abridge(status, body)
					}
				} else if phase.Load() == measuring {
					h.record(elapsed)
					n++
					measured.Add(1)
				}
				if closed {
					reconnects++
					cs[i].tc.Close()
					if cs[i], err = cl.dial(addr); err != nil {
						break
					}
				}
			}
			if err != nil {
				phase.Store(stopped)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			s.Hist.merge(h)
			s.Requests += n
			s.Reconnects += reconnects
			for k, v := range nonOK {
				s.NonOK[k] += v
			}
			if s.FirstBad == "" {
				s.FirstBad = firstBad
			}
		})
	}
	want := int64(conns)
	sleepUntil(warmup, func() bool { return answered.Load() >= want }, &phase, stopped)
	cpu0, cpuErr := processCPU(pid)
	t0 := time.Now()
	phase.CompareAndSwap(warming, measuring)
	if during != nil {
		go during()
	}
	sleepUntil(dur, func() bool { return measured.Load() >= want }, &phase, stopped)
	phase.Store(stopped)
	t1 := time.Now()
	cpu1, cpuErr1 := processCPU(pid)
	wg.Wait()
	for _, c := range cs {
		if c != nil {
			c.tc.Close()
		}
	}
	if firstErr != nil {
		return s, firstErr
	}
	if err := errors.Join(cpuErr, cpuErr1); err != nil {
		return s, fmt.Errorf("reading the server's CPU time: %w", err)
	}
	s.Seconds = t1.Sub(t0).Seconds()
	s.RPS = float64(s.Requests) / s.Seconds
	s.ServerCPU = cpu1 - cpu0
	return s, nil
}

// sleepUntil sleeps for d and then until enough says so, at most
// maxPhase; or less if p reaches stop (a connection failed).
func sleepUntil(d time.Duration, enough func() bool, p *atomic.Int32, stop int32) {
	start := time.Now()
	for p.Load() != stop {
		elapsed := time.Since(start)
		if elapsed >= d && enough() || elapsed >= maxPhase {
			return
		}
		time.Sleep(max(min(10*time.Millisecond, d-elapsed), time.Millisecond))
	}
}

func abridge(status int, body []byte) string {
	b := string(bytes.TrimSpace(body))
	if len(b) > 600 {
		b = b[:600] + "…"
	}
	return strconv.Itoa(status) + " " + http.StatusText(status) + ": " + b
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux build Go supports).
const clockTicks = 100

// processCPU returns the user and system CPU time a process has used, in
// seconds, its threads (living and exited) included.
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command (which may hold spaces) in its
	// parentheses; utime and stime are fields 14 and 15 of the line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(utime+stime) / clockTicks, nil
}

// histogram counts latencies in log-linear buckets: exact below 128 ns,
// then 128 buckets per power of two (under 0.8% error), up to 2^40 ns.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	subBits     = 7
	subBuckets  = 1 << subBits
	histBuckets = (40 - subBits + 1) * subBuckets
)

func bucketOf(ns uint64) int {
	if ns < subBuckets {
		return int(ns)
	}
	e := bits.Len64(ns) - subBits - 1 // ns>>e is in [subBuckets, 2*subBuckets)
	i := (e+1)*subBuckets + int(ns>>e) - subBuckets
	return min(i, histBuckets-1)
}

// bucketMid is the middle of bucket i, in nanoseconds.
func bucketMid(i int) float64 {
	if i < subBuckets {
		return float64(i)
	}
	e := i/subBuckets - 1
	lo := uint64(i%subBuckets+subBuckets) << e
	return float64(lo) + float64(uint64(1)<<e-1)/2
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the p-quantile in milliseconds.
func (h *histogram) quantile(p float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= max(rank, 1) {
			return bucketMid(i) / 1e6
		}
	}
	return bucketMid(histBuckets-1) / 1e6
}
