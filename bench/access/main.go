// Command access drives the load of bench/access.sh: HTTPS requests
// through the gateway on 127.0.0.1 to a public app and to the same app
// behind the access layer (device certificate, trust score, Cedar).
//
//	access --port PORT --domain DOMAIN --ca FILE --cert FILE --key FILE
//	       [--public pub] [--guarded guard] [--path /] [--conns 32]
//	       [--duration 5s] [--rounds 5] [--handshake-conns 8]
//	       [--handshake-duration 5s] [--json]
//	access --only APP ... (the same flags)
//
// Keep-alive: --conns HTTP/1.1 connections per app, opened once and
// reused, each sending one GET after the other for --duration; the apps
// take turns for --rounds rounds (pub, guard, then guard, pub, ...) so
// both see the same noise. The client presents the device certificate to
// both apps: the TLS work is the same, only the access layer differs.
// Reported per app: requests/s (median of the rounds), p50 and p99 over
// every request, and the guard/pub ratio of requests/s.
//
// Handshakes: for --handshake-duration, --handshake-conns goroutines each
// open a new connection (a full TLS 1.3 handshake: a fresh configuration
// without a session cache, so nothing is resumed), send one GET on it and
// close it; reported as handshakes/s, with the device certificate to the
// guarded app and to the public one, and without one to the public one.
//
// --only APP loads that app alone, one round, no handshakes: for a CPU
// profile of the server under one app's load.
//
// Only 200 answers count: any other answer or error stops the run with
// exit status 1 (a 401 or 403 means the setup is wrong). Progress goes to
// stderr; the summary to stdout, as text or with --json as JSON.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fail(err)
	}
	if cfg.only != "" {
		res, err := only(cfg)
		if err != nil {
			fail(err)
		}
		if cfg.json {
			_ = json.NewEncoder(os.Stdout).Encode(res)
			return
		}
		fmt.Printf("%s alone, %d connections, %s: %.0f req/s, p50 %.3f ms, p99 %.3f ms\n", res.App, cfg.conns, cfg.duration, res.RPS, res.P50ms, res.P99ms)
		return
	}
	rep, err := run(cfg)
	if err != nil {
		fail(err)
	}
	if cfg.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	rep.print(os.Stdout)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "access:", err)
	os.Exit(1)
}

type config struct {
	addr            string // always on 127.0.0.1
	domain          string
	public, guarded string
	only            string
	path            string
	conns, rounds   int
	duration        time.Duration
	hsConns         int
	hsDuration      time.Duration
	roots           *x509.CertPool
	cert            tls.Certificate
	json            bool
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("access", flag.ExitOnError)
	port := fs.Int("port", 0, "the gateway's HTTPS port on 127.0.0.1")
	domain := fs.String("domain", "", "the platform's domain: apps are APP.DOMAIN")
	caFile := fs.String("ca", "", "the platform CA's root certificate (noops ca root)")
	certFile := fs.String("cert", "", "the device certificate (noops login's cert.pem)")
	keyFile := fs.String("key", "", "the device key (noops login's key.pem)")
	public := fs.String("public", "pub", "the app with access: { policy: public }")
	guarded := fs.String("guarded", "guard", "the same app behind a Cedar policy")
	path := fs.String("path", "/", "the path every GET asks for")
	conns := fs.Int("conns", 32, "keep-alive connections per app")
	duration := fs.Duration("duration", 5*time.Second, "length of one round of one app")
	rounds := fs.Int("rounds", 5, "rounds per app")
	hsConns := fs.Int("handshake-conns", 8, "goroutines making handshakes")
	hsDuration := fs.Duration("handshake-duration", 5*time.Second, "length of each handshake test")
	only := fs.String("only", "", "load only this app, one round, no handshakes (for profiles)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	_ = fs.Parse(args)
	c := config{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)), domain: *domain, public: *public, guarded: *guarded,
		path: *path, only: *only, conns: *conns, rounds: *rounds, duration: *duration, hsConns: *hsConns, hsDuration: *hsDuration, json: *asJSON}
	// The load is bounded: it stops by itself within a few minutes.
	switch {
	case *port <= 0 || *port > 65535:
		return c, fmt.Errorf("--port %d is not a port", *port)
	case c.domain == "" || *caFile == "" || *certFile == "" || *keyFile == "":
		return c, errors.New("--domain, --ca, --cert and --key are required")
	case !strings.HasPrefix(c.path, "/"):
		return c, fmt.Errorf("--path %q does not start with /", c.path)
	case c.conns < 1 || c.conns > 512, c.hsConns < 1 || c.hsConns > 512:
		return c, errors.New("--conns and --handshake-conns must be 1-512")
	case c.rounds < 1 || c.rounds > 50:
		return c, errors.New("--rounds must be 1-50")
	case c.duration < 100*time.Millisecond || c.duration > time.Minute, c.hsDuration < 100*time.Millisecond || c.hsDuration > time.Minute:
		return c, errors.New("--duration and --handshake-duration must be 100ms-1m")
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return c, err
	}
	c.roots = x509.NewCertPool()
	if !c.roots.AppendCertsFromPEM(pem) {
		return c, fmt.Errorf("%s holds no certificate", *caFile)
	}
	if c.cert, err = tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
		return c, fmt.Errorf("loading the device certificate: %w", err)
	}
	return c, nil
}

// report is the summary, printed as text or JSON.
type report struct {
	Path       string         `json:"path"`
	Conns      int            `json:"conns"`
	Rounds     int            `json:"rounds"`
	DurationS  float64        `json:"round_seconds"`
	Public     loadResult     `json:"public"`
	Guarded    loadResult     `json:"guarded"`
	Ratio      float64        `json:"ratio"`       // guarded/public, medians of rounds
	PairRatios []float64      `json:"pair_ratios"` // guarded/public, round by round
	TargetMet  bool           `json:"target_met"`  // Ratio >= 0.9
	Handshakes handshakeGroup `json:"handshakes"`
}

type loadResult struct {
	App        string    `json:"app"`
	RPS        float64   `json:"rps"` // median of the rounds
	RoundRPS   []float64 `json:"round_rps"`
	Requests   int       `json:"requests"`
	P50ms      float64   `json:"p50_ms"`
	P99ms      float64   `json:"p99_ms"`
	Reconnects int       `json:"reconnects"` // connections the server closed, reopened
}

type handshakeGroup struct {
	Conns       int             `json:"conns"`
	DurationS   float64         `json:"seconds"`
	GuardedMTLS handshakeResult `json:"guarded_client_cert"`
	PublicMTLS  handshakeResult `json:"public_client_cert"`
	PublicPlain handshakeResult `json:"public_no_client_cert"`
}

type handshakeResult struct {
	App        string  `json:"app"`
	ClientCert bool    `json:"client_cert"`
	PerSecond  float64 `json:"per_second"`
	Count      int     `json:"count"`
	P50ms      float64 `json:"p50_ms"` // handshake and GET
	P99ms      float64 `json:"p99_ms"`
}

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "keep-alive HTTPS, %d connections per app, GET %s, %d rounds of %s per app, alternating; device certificate to both:\n",
		r.Conns, r.Path, r.Rounds, time.Duration(r.DurationS*float64(time.Second)))
	for _, l := range []struct {
		what string
		res  loadResult
	}{{"public", r.Public}, {"mTLS+Cedar", r.Guarded}} {
		fmt.Fprintf(w, "  %-10s (%s): %.0f req/s (median of rounds %s), p50 %.3f ms, p99 %.3f ms\n",
			l.what, l.res.App, l.res.RPS, joinFloats(l.res.RoundRPS, "%.0f"), l.res.P50ms, l.res.P99ms)
	}
	fmt.Fprintf(w, "  guard/pub ratio %.3f (round by round %s); mTLS+Cedar keeps >= 90%% of public requests/s: %s\n",
		r.Ratio, joinFloats(r.PairRatios, "%.3f"), yesNo(r.TargetMet))
	h := r.Handshakes
	fmt.Fprintf(w, "full TLS 1.3 handshakes, each followed by one GET, %d goroutines, %s each:\n",
		h.Conns, time.Duration(h.DurationS*float64(time.Second)))
	for _, res := range []handshakeResult{h.GuardedMTLS, h.PublicMTLS, h.PublicPlain} {
		cert := "with a client certificate"
		if !res.ClientCert {
			cert = "without a client certificate"
		}
		fmt.Fprintf(w, "  %s %s: %.0f handshakes/s, p50 %.3f ms, p99 %.3f ms\n", res.App, cert, res.PerSecond, res.P50ms, res.P99ms)
	}
}

func joinFloats(fs []float64, format string) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = fmt.Sprintf(format, f)
	}
	return strings.Join(s, " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func run(cfg config) (report, error) {
	pub := newTarget(cfg, cfg.public)
	guard := newTarget(cfg, cfg.guarded)
	defer pub.close()
	defer guard.close()
	for _, t := range []*target{pub, guard} {
		if err := t.open(cfg.conns); err != nil {
			return report{}, err
		}
		// Warm up: the first request of a certificate verifies its chain.
		if _, err := t.round(min(time.Second, cfg.duration)); err != nil {
			return report{}, fmt.Errorf("warming up %s: %w", t.host, err)
		}
		t.reset()
	}
	rep := report{Path: cfg.path, Conns: cfg.conns, Rounds: cfg.rounds, DurationS: cfg.duration.Seconds()}
	for i := range cfg.rounds {
		order := []*target{pub, guard}
		if i%2 == 1 {
			order = []*target{guard, pub}
		}
		for _, t := range order {
			rps, err := t.round(cfg.duration)
			if err != nil {
				return report{}, fmt.Errorf("round %d: %w", i+1, err)
			}
			fmt.Fprintf(os.Stderr, "round %d %s: %.0f req/s\n", i+1, t.app, rps)
		}
		rep.PairRatios = append(rep.PairRatios, guard.rounds[i]/pub.rounds[i])
	}
	rep.Public, rep.Guarded = pub.result(), guard.result()
	rep.Ratio = rep.Guarded.RPS / rep.Public.RPS
	rep.TargetMet = rep.Ratio >= 0.9
	pub.close()
	guard.close()

	h := &rep.Handshakes
	h.Conns, h.DurationS = cfg.hsConns, cfg.hsDuration.Seconds()
	var err error
	if h.GuardedMTLS, err = handshakes(cfg, cfg.guarded, true); err != nil {
		return report{}, err
	}
	if h.PublicMTLS, err = handshakes(cfg, cfg.public, true); err != nil {
		return report{}, err
	}
	if h.PublicPlain, err = handshakes(cfg, cfg.public, false); err != nil {
		return report{}, err
	}
	return rep, nil
}

// only loads one app alone for one round.
func only(cfg config) (loadResult, error) {
	t := newTarget(cfg, cfg.only)
	defer t.close()
	if err := t.open(cfg.conns); err != nil {
		return loadResult{}, err
	}
	if _, err := t.round(cfg.duration); err != nil {
		return loadResult{}, err
	}
	return t.result(), nil
}

// target is one app under keep-alive load: its connections and what they
// measured.
type target struct {
	cfg        config
	app, host  string
	request    []byte
	conns      []*conn
	rounds     []float64       // requests/s of each round
	latency    []time.Duration // every request of every round
	reconnects int
}

func newTarget(cfg config, app string) *target {
	host := app + "." + cfg.domain
	req := "GET " + cfg.path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: noops-bench-access\r\n\r\n"
	return &target{cfg: cfg, app: app, host: host, request: []byte(req)}
}

func (t *target) open(n int) error {
	for range n {
		c, err := dial(t.cfg, t.host, true)
		if err != nil {
			return err
		}
		t.conns = append(t.conns, c)
	}
	return nil
}

func (t *target) close() {
	for _, c := range t.conns {
		c.tc.Close()
	}
	t.conns = nil
}

func (t *target) reset() { t.rounds, t.latency, t.reconnects = nil, nil, 0 }

// round sends GETs on every connection for d and records the rate.
func (t *target) round(d time.Duration) (float64, error) {
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		once     sync.Once
		firstErr error
	)
	lat := make([][]time.Duration, len(t.conns))
	reconnects := make([]int, len(t.conns))
	start := time.Now()
	deadline := start.Add(d)
	for i := range t.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				closed, err := t.conns[i].get(t.request, deadline.Add(30*time.Second))
				if err == nil && closed {
					// The server ended the connection: open another and say so.
					reconnects[i]++
					t.conns[i].tc.Close()
					t.conns[i], err = dial(t.cfg, t.host, true)
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("GET https://%s%s: %w", t.host, t.cfg.path, err) })
					stop.Store(true)
					break
				}
				l = append(l, time.Since(t0))
			}
			lat[i] = l
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, firstErr
	}
	n := 0
	for i, l := range lat {
		n += len(l)
		t.latency = append(t.latency, l...)
		t.reconnects += reconnects[i]
	}
	rps := float64(n) / elapsed.Seconds()
	t.rounds = append(t.rounds, rps)
	return rps, nil
}

func (t *target) result() loadResult {
	slices.Sort(t.latency)
	r := slices.Clone(t.rounds)
	slices.Sort(r)
	med := r[len(r)/2]
	if len(r)%2 == 0 {
		med = (r[len(r)/2-1] + r[len(r)/2]) / 2
	}
	return loadResult{App: t.app, RPS: med, RoundRPS: t.rounds, Requests: len(t.latency),
		P50ms: quantile(t.latency, 0.5), P99ms: quantile(t.latency, 0.99), Reconnects: t.reconnects}
}

// quantile of sorted samples, in milliseconds.
func quantile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return float64(sorted[min(max(i, 0), len(sorted)-1)].Microseconds()) / 1000
}

// conn is one TLS connection to the gateway with HTTP/1.1 on it.
type conn struct {
	tc *tls.Conn
	br *bufio.Reader
}

// dial opens a connection to the gateway on 127.0.0.1 for host (the SNI),
// verifying the server with the CA root, and with a fresh configuration
// without a session cache: every dial is a full handshake. With cert, the
// device certificate is presented, and the server must ask for it.
func dial(cfg config, host string, cert bool) (*conn, error) {
	var requested bool
	tc := &tls.Config{
		RootCAs: cfg.roots, ServerName: host, NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13,
	}
	if cert {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			requested = true
			return &cfg.cert, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", host, err)
	}
	if cs := c.ConnectionState(); cs.DidResume || cs.Version != tls.VersionTLS13 {
		c.Close()
		return nil, fmt.Errorf("TLS with %s: resumed %v, version %x: want a full TLS 1.3 handshake", host, cs.DidResume, cs.Version)
	}
	if cert && !requested {
		c.Close()
		return nil, fmt.Errorf("%s did not ask for a client certificate", host)
	}
	return &conn{tc: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

// get sends req and reads the answer, which must be a 200; closed says
// the server will not take another request on this connection.
func (c *conn) get(req []byte, deadline time.Time) (closed bool, err error) {
	if err := c.tc.SetDeadline(deadline); err != nil {
		return false, err
	}
	if _, err := c.tc.Write(req); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return false, err
	}
	return resp.Close, nil
}

// handshakes opens connections to app with full handshakes for the
// configured time, one GET on each.
func handshakes(cfg config, app string, cert bool) (handshakeResult, error) {
	host := app + "." + cfg.domain
	req := []byte("GET " + cfg.path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: noops-bench-access\r\nConnection: close\r\n\r\n")
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		once     sync.Once
		firstErr error
	)
	lat := make([][]time.Duration, cfg.hsConns)
	start := time.Now()
	deadline := start.Add(cfg.hsDuration)
	for i := range cfg.hsConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				err := handshakeOnce(cfg, host, cert, req)
				if err != nil {
					once.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return handshakeResult{}, fmt.Errorf("handshakes with %s: %w", host, firstErr)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := handshakeResult{App: app, ClientCert: cert, Count: len(all), PerSecond: float64(len(all)) / elapsed.Seconds(),
		P50ms: quantile(all, 0.5), P99ms: quantile(all, 0.99)}
	fmt.Fprintf(os.Stderr, "handshakes %s client certificate %v: %.0f/s\n", app, cert, r.PerSecond)
	return r, nil
}

func handshakeOnce(cfg config, host string, cert bool, req []byte) error {
	c, err := dial(cfg, host, cert)
	if err != nil {
		return err
	}
	defer c.tc.Close()
	if _, err := c.get(req, time.Now().Add(30*time.Second)); err != nil {
		return fmt.Errorf("GET https://%s%s: %w", host, cfg.path, err)
	}
	return nil
}
