package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the run's results, printed as tables and saved as JSON.
type report struct {
	Date          string            `json:"date"`
	Modules       map[string]string `json:"modules"`
	CPUs          int               `json:"cpus"`
	ServerProcs   int               `json:"server_gomaxprocs"`
	ClientProcs   int               `json:"client_gomaxprocs"`
	Conns         int               `json:"conns"`
	Rounds        int               `json:"rounds"`
	RoundSeconds  float64           `json:"round_seconds"`
	WarmupSeconds float64           `json:"warmup_seconds"`
	Rules         map[string]int    `json:"rules"`
	// Requests are the three servers under a GET and a 4 KB form; Sizes
	// noops and coraza under forms of each size.
	Requests []*comparison `json:"requests"`
	Sizes    []*comparison `json:"sizes"`
	// TargetMet: noops/coraza >= 1.0 for every kind of Requests.
	TargetMet bool `json:"target_met"`
	// NoopsAhead: noops/coraza >= 1.0 everywhere, Sizes included.
	NoopsAhead bool           `json:"noops_ahead"`
	Profiles   []profileFiles `json:"profiles,omitempty"`
}

// comparison is one kind of request on several servers.
type comparison struct {
	Kind        kind               `json:"kind"`
	Results     map[string]*result `json:"results"`
	NoopsCoraza float64            `json:"noops_coraza"`          // requests/s, best rounds
	RoundRatios []float64          `json:"noops_coraza_by_round"` // requests/s, round by round
	NoopsOff    float64            `json:"noops_off,omitempty"`
	// CPUNoopsCoraza is noops's server CPU per request over coraza's
	// (best rounds): below 1, noops spends less.
	CPUNoopsCoraza float64 `json:"server_cpu_noops_coraza"`
}

// result is one server under one kind of request.
type result struct {
	RPS      float64   `json:"rps"` // of the best round
	RoundRPS []float64 `json:"round_rps"`
	// RoundSeconds are the measurements' lengths: the duration, or longer
	// when fewer answers than connections had come in by then.
	RoundSeconds []float64 `json:"round_seconds"`
	MedianRPS    float64   `json:"median_rps"`
	// Of the best round:
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	USPerReq float64 `json:"us_per_request"` // 1e6 / RPS: the machine's time per request
	// CPUPerReq is the server process's CPU time per request, in µs (its
	// app included; the client's CPU is not).
	CPUPerReq  float64 `json:"server_cpu_us_per_request"`
	Requests   int     `json:"requests"`
	Reconnects int     `json:"reconnects"` // every round
	best       sample
}

func measureAll(cl *client, set *servers, cfg config) (*report, error) {
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Modules: modules(), CPUs: runtime.NumCPU(),
		ServerProcs: cfg.serverProcs, ClientProcs: runtime.GOMAXPROCS(0), Conns: cfg.conns, Rounds: cfg.rounds,
		RoundSeconds: cfg.duration.Seconds(), WarmupSeconds: cfg.warmup.Seconds(), Rules: map[string]int{}}
	for _, s := range set.list {
		rep.Rules[s.name] = s.rules
	}
	three := []string{serverNoops, serverCoraza, serverOff}
	two := []string{serverNoops, serverCoraza}
	for _, k := range []kind{getKind(), formKind(4 << 10)} {
		rep.Requests = append(rep.Requests, newComparison(k, three))
	}
	for _, size := range cfg.sizes {
		rep.Sizes = append(rep.Sizes, newComparison(formKind(size), two))
	}
	for _, part := range []struct {
		cs    []*comparison
		names []string
	}{{rep.Requests, three}, {rep.Sizes, two}} {
		for r := range cfg.rounds {
			for _, c := range part.cs {
				// The order rotates: no server always goes first.
				for i := range part.names {
					name := part.names[(i+r)%len(part.names)]
					if err := c.run(cl, set.get(name), r, cfg); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	rep.TargetMet, rep.NoopsAhead = true, true
	for _, c := range rep.Requests {
		c.finish()
		rep.TargetMet = rep.TargetMet && c.NoopsCoraza >= 1
	}
	rep.NoopsAhead = rep.TargetMet
	for _, c := range rep.Sizes {
		c.finish()
		rep.NoopsAhead = rep.NoopsAhead && c.NoopsCoraza >= 1
	}
	return rep, nil
}

func newComparison(k kind, names []string) *comparison {
	c := &comparison{Kind: k, Results: map[string]*result{}}
	for _, n := range names {
		c.Results[n] = &result{}
	}
	return c
}

// run measures one round of one server.
func (c *comparison) run(cl *client, s *server, round int, cfg config) error {
	smp, err := cl.measure(s.addr, s.pid, c.Kind.req, cfg.conns, cfg.warmup, cfg.duration, nil)
	if err == nil {
		err = smp.check()
	}
	if err != nil {
		return fmt.Errorf("round %d, %s on %s: %w", round+1, c.Kind.What, s.name, err)
	}
	res := c.Results[s.name]
	res.RoundRPS = append(res.RoundRPS, smp.RPS)
	res.RoundSeconds = append(res.RoundSeconds, smp.Seconds)
	res.Reconnects += smp.Reconnects
	if smp.RPS > res.best.RPS {
		res.best = smp
	}
	fmt.Fprintf(os.Stderr, "round %d %-8s %-6s %7.1f req/s, p50 %.3f ms, p99 %.3f ms, server CPU %.1f µs/req (%d in %.1f s)\n",
		round+1, c.Kind.Name, s.name, smp.RPS, smp.Hist.quantile(0.5), smp.Hist.quantile(0.99), smp.cpuPerReq(), smp.Requests, smp.Seconds)
	return nil
}

// check fails a measurement with any answer other than 200: a benchmark
// of refusals measures nothing.
func (s sample) check() error {
	if len(s.NonOK) == 0 {
		return nil
	}
	total := 0
	var parts []string
	for _, st := range slices.Sorted(maps.Keys(s.NonOK)) {
		total += s.NonOK[st]
		parts = append(parts, fmt.Sprintf("%d× %d", s.NonOK[st], st))
	}
	return fmt.Errorf("%d answers were not 200 (%s; %d were); the first: %s", total, strings.Join(parts, ", "), s.Requests, s.FirstBad)
}

func (s sample) cpuPerReq() float64 {
	if s.Requests == 0 {
		return 0
	}
	return s.ServerCPU / float64(s.Requests) * 1e6
}

func (c *comparison) finish() {
	for _, r := range c.Results {
		b := r.best
		r.RPS, r.MedianRPS, r.Requests = b.RPS, median(r.RoundRPS), b.Requests
		if b.Hist != nil { // a round answered something
			r.P50ms, r.P99ms = b.Hist.quantile(0.5), b.Hist.quantile(0.99)
			r.USPerReq, r.CPUPerReq = 1e6/b.RPS, b.cpuPerReq()
		}
	}
	n, z := c.Results[serverNoops], c.Results[serverCoraza]
	c.NoopsCoraza = ratio(n.RPS, z.RPS)
	c.CPUNoopsCoraza = ratio(n.CPUPerReq, z.CPUPerReq)
	for i := range n.RoundRPS {
		c.RoundRatios = append(c.RoundRatios, ratio(n.RoundRPS[i], z.RoundRPS[i]))
	}
	if off := c.Results[serverOff]; off != nil {
		c.NoopsOff = ratio(n.RPS, off.RPS)
	}
}

// ratio is a/b, and 0 when b is (JSON has no infinity).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "WAF over HTTPS on 127.0.0.1 (ECDSA P-256, TLS 1.3, HTTP/1.1 keep-alive): %d connections, best of %d rounds of %s per server and kind (%s warm-up each), servers taking turns\n",
		rep.Conns, rep.Rounds, secs(rep.RoundSeconds), secs(rep.WarmupSeconds))
	fmt.Fprintf(w, "%d CPUs shared by the client and the servers, GOMAXPROCS %d per server process; %s, coraza %s, coraza-coreruleset %s\n",
		rep.CPUs, rep.ServerProcs, rep.Modules["go"], rep.Modules["coraza/v3"], rep.Modules["coraza-coreruleset/v4"])
	fmt.Fprintf(w, "  noops:  the gateway and its shield, WAF block at paranoia 1 (%d rules), proxying to the app in the same process\n", rep.Rules[serverNoops])
	fmt.Fprintf(w, "  coraza: coraza/v3/http.WrapHandler around the app, net/http TLS server (%d rules)\n", rep.Rules[serverCoraza])
	fmt.Fprintf(w, "  off:    the gateway and its shield, WAF off for the app\n\n")

	// Right-aligned columns; the text ones are padded to one width, so
	// they read left-aligned.
	width := len("request")
	for _, c := range rep.Requests {
		width = max(width, len(c.Kind.What))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t%-6s\treq/s\tround by round\tp50 ms\tp99 ms\tµs/req\tserver CPU µs/req\t\n", width, "request", "server")
	for _, c := range rep.Requests {
		for i, name := range []string{serverNoops, serverCoraza, serverOff} {
			r := c.Results[name]
			what := ""
			if i == 0 {
				what = c.Kind.What
			}
			fmt.Fprintf(tw, "%-*s\t%-6s\t%s\t%s\t%.3f\t%.3f\t%.1f\t%.1f\t\n", width, what, name, rate(r.RPS), joinRates(r.RoundRPS),
				r.P50ms, r.P99ms, r.USPerReq, r.CPUPerReq)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, c := range rep.Requests {
		fmt.Fprintf(w, "%s: noops/coraza %.3f (round by round %s), noops/off %.3f; server CPU per request noops/coraza %.3f\n",
			c.Kind.What, c.NoopsCoraza, joinFloats(c.RoundRatios, "%.3f"), c.NoopsOff, c.CPUNoopsCoraza)
	}
	fmt.Fprintf(w, "noops/coraza requests/s >= 1.0 for both: %s\n\n", yesNo(rep.TargetMet))

	fmt.Fprintf(w, "form POST cost by body size, noops (WAF block, PL1) vs coraza, best of %d rounds:\n", rep.Rounds)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "body\tnoops req/s\tµs/req\tCPU µs/req\tp99 ms\tcoraza req/s\tµs/req\tCPU µs/req\tp99 ms\tnoops/coraza req/s\tby round\tCPU noops/coraza\t")
	for _, c := range rep.Sizes {
		n, z := c.Results[serverNoops], c.Results[serverCoraza]
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%s\t%.1f\t%.1f\t%.1f\t%.3f\t%s\t%.3f\t\n", sizeLabel(c.Kind.BodySize),
			rate(n.RPS), n.USPerReq, n.CPUPerReq, n.P99ms, rate(z.RPS), z.USPerReq, z.CPUPerReq, z.P99ms,
			c.NoopsCoraza, joinFloats(c.RoundRatios, "%.2f"), c.CPUNoopsCoraza)
	}
	tw.Flush()
}

// rate formats requests/s: whole numbers, one decimal below 100.
func rate(r float64) string {
	if r < 100 {
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.0f", r)
}

func joinRates(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = rate(r)
	}
	return strings.Join(s, " ")
}

func secs(s float64) string { return time.Duration(s * float64(time.Second)).String() }

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

// profileFiles are the profiles of one server under one kind of request.
type profileFiles struct {
	Server    string  `json:"server"`
	Kind      string  `json:"kind"`
	RPS       float64 `json:"rps"`
	CPUPerReq float64 `json:"server_cpu_us_per_request"`
	CPU       string  `json:"cpu"`
	Allocs0   string  `json:"allocs_before"`
	Allocs    string  `json:"allocs_after"`
}

// profiles restarts noops and coraza, loads each alone under the GET,
// the 4 KB form and the largest form, in that order, and saves the
// server's CPU profile and its allocation profile before and after. The
// restart matters: Coraza pools its transactions, and a transaction that
// inspected a large form keeps its grown maps, which then cost every
// later request some (about 15% of a GET after 64 KB forms).
func profiles(cl *client, set *servers, cfg config, certFile, keyFile string) ([]profileFiles, error) {
	for _, name := range []string{serverNoops, serverCoraza} {
		if err := set.restart(name, certFile, keyFile, cfg); err != nil {
			return nil, err
		}
	}
	kinds := []kind{getKind(), formKind(4 << 10)}
	if big := slices.Max(cfg.sizes); big != 4<<10 {
		kinds = append(kinds, formKind(big))
	}
	secs := time.Duration(cfg.profileSeconds) * time.Second
	var out []profileFiles
	for _, k := range kinds {
		for _, name := range []string{serverNoops, serverCoraza} {
			s := set.get(name)
			base := filepath.Join(cfg.outDir, "waf-"+name+"-"+k.Name)
			p := profileFiles{Server: name, Kind: k.Name, CPU: base + "-cpu.out", Allocs0: base + "-allocs0.out", Allocs: base + "-allocs.out"}
			fmt.Fprintf(os.Stderr, "profiling %s under %s alone for %s\n", name, k.What, secs)
			errc := make(chan error, 1)
			grab := func() {
				errc <- fetchAll(s.debug, []string{"allocs", fmt.Sprintf("profile?seconds=%d", cfg.profileSeconds), "allocs"},
					[]string{p.Allocs0, p.CPU, p.Allocs}, secs)
			}
			smp, err := cl.measure(s.addr, s.pid, k.req, cfg.conns, cfg.warmup, secs+2*time.Second, grab)
			if err == nil {
				err = smp.check()
			}
			if err == nil {
				err = <-errc
			}
			if err != nil {
				return nil, fmt.Errorf("profiling %s under %s: %w", name, k.What, err)
			}
			p.RPS, p.CPUPerReq = smp.RPS, smp.cpuPerReq()
			out = append(out, p)
		}
	}
	return out, nil
}

// fetchAll saves each debug path of a server to its file, in order.
func fetchAll(debugAddr string, paths, files []string, d time.Duration) error {
	hc := &http.Client{Timeout: d + 30*time.Second}
	for i, p := range paths {
		resp, err := hc.Get("http://" + debugAddr + "/debug/pprof/" + p)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET /debug/pprof/%s: %s", p, resp.Status)
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(files[i], b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
