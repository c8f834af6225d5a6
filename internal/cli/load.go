package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"noops/internal/errkind"
)

// Bounds of `noops load`: it is a check before launch, not a weapon.
const (
	maxLoadRate     = 20000
	maxLoadDuration = 10 * time.Minute
)

// LoadReport is what `noops load --json` prints.
type LoadReport struct {
	App         string         `json:"app"`
	URL         string         `json:"url"`
	Rate        int            `json:"rate"` // requests per second asked for
	Duration    string         `json:"duration"`
	Requests    uint64         `json:"requests"`
	Success     float64        `json:"success"`    // share of 2xx/3xx answers, 0..1
	Throughput  float64        `json:"throughput"` // successful requests per second
	P50Ms       float64        `json:"p50_ms"`
	P95Ms       float64        `json:"p95_ms"`
	P99Ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	StatusCodes map[string]int `json:"status_codes"`
	Errors      []string       `json:"errors"`
	Replicas    []ReplicaPoint `json:"replicas"` // once a second while it ran
}

// ReplicaPoint is the app's replicas at one moment of a load test.
type ReplicaPoint struct {
	Second  int     `json:"second"`
	Ready   int     `json:"ready"`
	Wanted  int     `json:"wanted"`
	Stable  float64 `json:"stable_concurrency"`
	Panicky bool    `json:"panicking"`
}

func newLoad(e *env) *cobra.Command {
	var rate int
	var duration time.Duration
	var path string
	c := &cobra.Command{
		Use:   "load APP",
		Short: "Drive an app of this server with a constant request rate and report latencies, errors and replicas",
		Long: "Sends GET requests at --rate per second for --duration to an app served by this noops server, " +
			"through its gateway on loopback (it cannot be aimed elsewhere), and prints p50/p95/p99/max latency, " +
			"errors, throughput and the app's replica count over time.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			usage := func(format string, args ...any) error {
				return errkind.WithHint(errkind.Invalid, fmt.Errorf(format, args...), "see `noops load --help`")
			}
			if rate < 1 || rate > maxLoadRate {
				return usage("--rate %d is out of range (1-%d requests per second)", rate, maxLoadRate)
			}
			if duration < time.Second || duration > maxLoadDuration {
				return usage("--duration %s is out of range (1s-%s)", duration, maxLoadDuration)
			}
			if !strings.HasPrefix(path, "/") {
				return usage("--path %q must start with /", path)
			}
			rep, err := runLoad(cmd.Context(), e, args[0], path, rate, duration)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(rep)
			}
			printLoad(e, rep)
			return nil
		},
	}
	c.Flags().IntVar(&rate, "rate", 50, "requests per second")
	c.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long")
	c.Flags().StringVar(&path, "path", "/", "the path requested")
	addJSON(c, e)
	return c
}

// runLoad attacks the app with vegeta and samples its replicas every second.
func runLoad(ctx context.Context, e *env, app, path string, rate int, duration time.Duration) (LoadReport, error) {
	cl := e.client()
	st, err := cl.Status(ctx)
	if err != nil {
		return LoadReport{}, err
	}
	if _, err := cl.App(ctx, app); err != nil {
		return LoadReport{}, err
	}
	addr, err := loopbackAddr(st.HTTPS)
	if err != nil {
		return LoadReport{}, err
	}
	pem, err := cl.CARoot(ctx)
	if err != nil {
		return LoadReport{}, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return LoadReport{}, errkind.Errorf(errkind.Internal, "the server's CA root is not a PEM certificate")
	}
	host := app + "." + st.Domain
	url := "https://" + host + portSuffixOf(addr) + path
	// Every connection goes to the gateway on loopback, whatever the URL's
	// host resolves to: the load cannot leave this machine's gateway.
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 10000,
		ForceAttemptHTTP2:   false,
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	attacker := vegeta.NewAttacker(vegeta.Client(client), vegeta.MaxWorkers(uint64(max(rate, 64))))
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: url})

	rep := LoadReport{App: app, URL: url, Rate: rate, Duration: duration.String()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for sec := 1; ; sec++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			sc, err := cl.Scaling(ctx, app)
			if err != nil {
				continue
			}
			p := ReplicaPoint{Second: sec, Ready: sc.Ready, Wanted: sc.Desired, Stable: sc.Stable, Panicky: sc.Panicking}
			mu.Lock()
			rep.Replicas = append(rep.Replicas, p)
			mu.Unlock()
			if !e.json {
				fmt.Fprintf(e.stderr, "  %3ds  replicas %d ready / %d wanted  in flight %.1f%s\n", sec, p.Ready, p.Wanted, p.Stable, map[bool]string{true: "  (panicking)"}[p.Panicky])
			}
		}
	}()
	var m vegeta.Metrics
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, duration, "noops load") {
		m.Add(res)
		if ctx.Err() != nil {
			attacker.Stop()
		}
	}
	m.Close()
	cancel()
	wg.Wait()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rep.Requests, rep.Success, rep.Throughput = m.Requests, m.Success, m.Throughput
	rep.P50Ms, rep.P95Ms, rep.P99Ms, rep.MaxMs = ms(m.Latencies.P50), ms(m.Latencies.P95), ms(m.Latencies.P99), ms(m.Latencies.Max)
	rep.StatusCodes, rep.Errors = m.StatusCodes, m.Errors
	if rep.Errors == nil {
		rep.Errors = []string{}
	}
	return rep, nil
}

// loopbackAddr is where the load goes: the gateway's HTTPS port on
// loopback. A gateway that listens only on another address is refused.
func loopbackAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", errkind.Errorf(errkind.Internal, "the server reports its HTTPS address as %q: %v", listen, err)
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || ip != nil && ip.IsUnspecified():
		return net.JoinHostPort("127.0.0.1", port), nil
	case ip != nil && ip.IsLoopback():
		return listen, nil
	}
	return "", errkind.WithHint(errkind.Invalid, fmt.Errorf("the gateway listens on %s only, and noops load sends traffic to loopback only", listen),
		"run the server with --https :PORT or 127.0.0.1:PORT to load-test its apps")
}

func portSuffixOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	if port == "443" {
		return ""
	}
	return ":" + port
}

func printLoad(e *env, r LoadReport) {
	fmt.Fprintf(e.stdout, "%s: %d requests in %s at %d/s\n", r.URL, r.Requests, r.Duration, r.Rate)
	fmt.Fprintf(e.stdout, "latency  p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms\n", r.P50Ms, r.P95Ms, r.P99Ms, r.MaxMs)
	fmt.Fprintf(e.stdout, "success  %.2f%%  throughput %.1f/s  status codes %v\n", r.Success*100, r.Throughput, r.StatusCodes)
	for _, err := range r.Errors {
		fmt.Fprintf(e.stdout, "error    %s\n", err)
	}
	if len(r.Replicas) > 0 {
		fmt.Fprint(e.stdout, "replicas ")
		for i, p := range r.Replicas {
			if i > 0 {
				fmt.Fprint(e.stdout, " ")
			}
			fmt.Fprintf(e.stdout, "%d", p.Ready)
		}
		fmt.Fprintln(e.stdout, "  (ready, once a second)")
	}
}
