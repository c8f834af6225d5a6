package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// server is one side's server process.
type server struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
	sent  int64 // spans sent, warm-up included
	// traces is a sample of the trace IDs sent, to read back.
	traces [][]byte
}

func startServer(name, dir string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "serve", "--side", name, "--dir", filepath.Join(dir, name))
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s server: %w", name, err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the %s server did not start: %q, %v", name, line, err)
	}
	return &server{name: name, cmd: cmd, stdin: stdin, url: "http://" + addr}, nil
}

func (s *server) stop() error {
	_ = s.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("the %s server did not stop in 30 s", s.name)
	}
}

func (s *server) stats(c *http.Client) (serverStats, error) {
	var st serverStats
	resp, err := c.Get(s.url + "/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s *server) call(c *http.Client, method, path string) (string, error) {
	req, _ := http.NewRequest(method, s.url+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// roundResult is one side's measurement of one round.
type roundResult struct {
	Spans         int     `json:"spans"`
	Seconds       float64 `json:"seconds"`
	CPUSeconds    float64 `json:"server_cpu_seconds"`
	SpansPerCPU   float64 `json:"spans_per_cpu_second"`
	SpansPerSec   float64 `json:"spans_per_second"`
	CPUPerSpanUs  float64 `json:"server_cpu_us_per_span"`
	P50ms         float64 `json:"request_p50_ms"`
	P99ms         float64 `json:"request_p99_ms"`
	RequestBytes  int     `json:"request_bytes_avg"`
	StoreBytesNow int64   `json:"store_bytes,omitempty"`
}

func newClient(n int) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n, DisableCompression: true}}
}

// load POSTs bodies from n clients; it fails on any answer but 200.
func load(ctx context.Context, c *http.Client, url string, bodies [][]byte, n int) ([]time.Duration, time.Duration, error) {
	var next atomic.Int64
	lat := make([]time.Duration, len(bodies))
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				t := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/traces", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/x-protobuf")
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || len(b) != 0 {
					// A 200 with a body carries a partial success: spans refused.
					errs <- fmt.Errorf("export %d: status %d, body %q", i, resp.StatusCode, b)
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return nil, 0, err
	default:
	}
	return lat, elapsed, ctx.Err()
}

func (s *server) round(c *http.Client, cfg config, seed uint64, requests int) (roundResult, error) {
	g := newGen(seed, time.Now())
	bodies := make([][]byte, requests)
	total := 0
	for i := range bodies {
		var traces [][]byte
		bodies[i], traces = g.request(cfg.spans)
		total += len(bodies[i])
		if i%97 == 0 {
			s.traces = append(s.traces, traces[0])
		}
	}
	before, err := s.stats(c)
	if err != nil {
		return roundResult{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	lat, elapsed, err := load(ctx, c, s.url, bodies, cfg.clients)
	if err != nil {
		return roundResult{}, fmt.Errorf("%s: %w", s.name, err)
	}
	if _, err := s.call(c, http.MethodPost, "/flush"); err != nil {
		return roundResult{}, err
	}
	after, err := s.stats(c)
	if err != nil {
		return roundResult{}, err
	}
	s.sent += int64(requests * cfg.spans)
	slices.Sort(lat)
	r := roundResult{Spans: requests * cfg.spans, Seconds: elapsed.Seconds(),
		CPUSeconds: float64(after.CPUNs-before.CPUNs) / 1e9, RequestBytes: total / requests,
		P50ms: ms(lat[len(lat)/2]), P99ms: ms(lat[len(lat)*99/100])}
	r.SpansPerSec = float64(r.Spans) / r.Seconds
	if r.CPUSeconds > 0 {
		r.SpansPerCPU = float64(r.Spans) / r.CPUSeconds
		r.CPUPerSpanUs = r.CPUSeconds * 1e6 / float64(r.Spans)
	}
	if after.Store != nil {
		r.StoreBytesNow = after.Store.Bytes
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// verify checks that the store side kept every span and reads back a
// sample of traces whole.
func (s *server) verify(c *http.Client) (spans, bytes int64, checked int, err error) {
	st, err := s.stats(c)
	if err != nil {
		return 0, 0, 0, err
	}
	if st.Store == nil {
		return 0, 0, 0, fmt.Errorf("the store side reports no store")
	}
	if st.Store.Spans != s.sent || st.Store.Buffered != 0 || st.OTLP.Rejected != 0 {
		return 0, 0, 0, fmt.Errorf("the store holds %d spans (%d buffered, %d rejected), %d were sent", st.Store.Spans, st.Store.Buffered, st.OTLP.Rejected, s.sent)
	}
	for _, id := range s.traces {
		n, err := s.call(c, http.MethodGet, "/trace?id="+hex.EncodeToString(id))
		if err != nil {
			return 0, 0, 0, fmt.Errorf("reading trace %x back: %w", id, err)
		}
		if n != "10" {
			return 0, 0, 0, fmt.Errorf("trace %x read back with %s spans, want 10", id, n)
		}
		checked++
	}
	return st.Store.Spans, st.Store.Bytes, checked, nil
}
