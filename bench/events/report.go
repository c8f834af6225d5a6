package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the run's results, printed as tables and saved as JSON.
type report struct {
	Date        string            `json:"date"`
	Modules     map[string]string `json:"modules"`
	CPUs        int               `json:"cpus"`
	GOMAXPROCS  int               `json:"gomaxprocs"`
	Events      int               `json:"events_per_round"`
	Size        int               `json:"event_bytes"`
	Publishers  int               `json:"publishers"`
	Concurrency int               `json:"concurrency"`
	Rounds      int               `json:"rounds"`
	Warmup      int               `json:"warmup_events"`
	LightRate   int               `json:"light_rate"` // events/s of the light-load run, 1 publisher
	LightEvents int               `json:"light_events"`
	// Reported says which round of each side the headline numbers are.
	Reported string        `json:"reported"`
	Sides    []*sideResult `json:"sides"`
	// Ratios of events/s, reported rounds: noops/jetstream is the target.
	NoopsJetStream        float64   `json:"noops_jetstream"`
	NoopsJetStreamBest    float64   `json:"noops_jetstream_best_rounds"`
	NoopsJetStreamByRound []float64 `json:"noops_jetstream_by_round"`
	IdemOffJetStream      float64   `json:"noops_idem_off_jetstream,omitempty"`
	NoopsNoHTTP           float64   `json:"noops_jetstream_nohttp"`
	JetStreamNoHTTP       float64   `json:"jetstream_jetstream_nohttp"` // what the HTTP hop leaves of the ceiling
	// TargetMet: noops/jetstream >= 0.7.
	TargetMet bool          `json:"target_met"`
	Profiles  []profileFile `json:"profiles,omitempty"`
}

const target = 0.7

// sideResult is one side over the rounds.
type sideResult struct {
	Name     string        `json:"name"`
	What     string        `json:"what"`
	Rounds   []roundResult `json:"rounds"` // in the order run
	Median   roundResult   `json:"median_round"`
	Best     roundResult   `json:"best_round"`
	EPSRound []float64     `json:"events_per_s_by_round"`
	// Light is the light-load run: one publisher, paced.
	Light *roundResult `json:"light,omitempty"`
	// HTTPConns is how many connections the handler accepted over the
	// whole run, warm-up included (keep-alive: about the concurrency).
	HTTPConns int64 `json:"handler_connections"`
	// MissedHeartbeats: the baseline's Next returned ErrNoHeartbeat (not
	// terminal; its workers go on).
	MissedHeartbeats int64 `json:"missed_heartbeats,omitempty"`
}

type profileFile struct {
	Side        string  `json:"side"`
	EPS         float64 `json:"events_per_s"`
	CPUPerEvent float64 `json:"process_cpu_us_per_event"`
	CPU         string  `json:"cpu"`
}

var descriptions = map[string]string{
	sideNoops:           "internal/events: bus.Publish; a function (concurrency N, defaults: idempotency on) via HTTPTarget",
	sideNoopsIdemOff:    "the same with idempotency: off",
	sideJetStream:       "js.Publish; durable pull consumer, Messages, N workers: HTTP POST, then ack",
	sideJetStreamNoHTTP: "the same workers without the POST (ceiling)",
}

func measureAll(sides []*side, cfg config) (*report, error) {
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Modules: modules(), CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Events: cfg.events, Size: cfg.size, Publishers: cfg.publishers, Concurrency: cfg.concurrency, Rounds: cfg.rounds, Warmup: cfg.warmup,
		LightRate: cfg.lightRate, LightEvents: cfg.lightEvents,
		Reported: "median round by events/s (of an even count, the lower middle one)"}
	res := map[string]*sideResult{}
	for _, s := range sides {
		r := &sideResult{Name: s.name, What: descriptions[s.name]}
		res[s.name] = r
		rep.Sides = append(rep.Sides, r)
	}
	for round := range cfg.rounds {
		// The order rotates: no side always goes first.
		for i := range sides {
			s := sides[(i+round)%len(sides)]
			r, err := s.round(cfg, cfg.events, "")
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, s.name, err)
			}
			res[s.name].Rounds = append(res[s.name].Rounds, r)
			fmt.Fprintf(os.Stderr, "round %d %-16s %7.0f events/s (publishing %7.0f/s), p50 %.3f ms, p99 %.3f ms, max %.1f ms, %.1f µs CPU/event, drained %.0f ms later\n",
				round+1, s.name, r.EPS, r.PublishEPS, r.P50ms, r.P99ms, r.MaxMs, r.CPUPerEvent, r.DrainMs)
		}
	}
	if cfg.lightRate > 0 {
		for _, s := range sides {
			r, err := s.run(cfg, cfg.lightEvents, 1, float64(cfg.lightRate), "")
			if err != nil {
				return nil, fmt.Errorf("light load, %s: %w", s.name, err)
			}
			res[s.name].Light = &r
			fmt.Fprintf(os.Stderr, "light load %-16s %d events at %d/s from 1 publisher: p50 %.3f ms, p99 %.3f ms, max %.1f ms\n",
				s.name, cfg.lightEvents, cfg.lightRate, r.P50ms, r.P99ms, r.MaxMs)
		}
	}
	// A late duplicate would come now, or not within a benchmark's time
	// (the consumers' ack wait is 30 s and more).
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range sides {
		if bad, first := s.rcv.anomalies(); bad > 0 {
			return nil, fmt.Errorf("%s: %d anomalies, the first: %s", s.name, bad, first)
		}
		if s.final != nil {
			if err := s.final(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
		}
		r := res[s.name]
		r.HTTPConns = s.rcv.conns.Load()
		r.MissedHeartbeats = s.missedHeartbeats.Load()
		for _, x := range r.Rounds {
			r.EPSRound = append(r.EPSRound, x.EPS)
		}
		sorted := slices.Clone(r.Rounds)
		slices.SortFunc(sorted, func(a, b roundResult) int { return cmpFloat(a.EPS, b.EPS) })
		r.Median, r.Best = sorted[(len(sorted)-1)/2], sorted[len(sorted)-1]
	}
	n, j, x := res[sideNoops], res[sideJetStream], res[sideJetStreamNoHTTP]
	rep.NoopsJetStream = ratio(n.Median.EPS, j.Median.EPS)
	rep.NoopsJetStreamBest = ratio(n.Best.EPS, j.Best.EPS)
	for i := range n.Rounds {
		rep.NoopsJetStreamByRound = append(rep.NoopsJetStreamByRound, ratio(n.Rounds[i].EPS, j.Rounds[i].EPS))
	}
	if o := res[sideNoopsIdemOff]; o != nil {
		rep.IdemOffJetStream = ratio(o.Median.EPS, j.Median.EPS)
	}
	rep.NoopsNoHTTP = ratio(n.Median.EPS, x.Median.EPS)
	rep.JetStreamNoHTTP = ratio(j.Median.EPS, x.Median.EPS)
	rep.TargetMet = rep.NoopsJetStream >= target
	return rep, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ratio is a/b, and 0 when b is (JSON has no infinity).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "Events end to end, publish to the function's handler, one process on 127.0.0.1: %d events of %d bytes per round, %d publishers (each waits for the ack), concurrency %d\n",
		rep.Events, rep.Size, rep.Publishers, rep.Concurrency)
	fmt.Fprintf(w, "%d rounds per side, sides taking turns (the order rotating), %d warm-up events each; reported: the %s\n",
		rep.Rounds, rep.Warmup, rep.Reported)
	fmt.Fprintf(w, "%d CPUs shared by everything, GOMAXPROCS %d; %s, nats-server %s, nats.go %s; each side its own embedded server (events.StartEmbedded, file storage)\n",
		rep.CPUs, rep.GOMAXPROCS, rep.Modules["go"], rep.Modules["nats-server/v2"], rep.Modules["nats.go"])
	for _, s := range rep.Sides {
		fmt.Fprintf(w, "  %-16s %s\n", s.Name+":", s.What)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-16s\tevents/s\tround by round\tbest\tpublish ev/s\tp50 ms\tp99 ms\tmax ms\tCPU µs/event\thandler conns\t\n", "side")
	for _, s := range rep.Sides {
		m := s.Median
		fmt.Fprintf(tw, "%-16s\t%.0f\t%s\t%.0f\t%.0f\t%.3f\t%.3f\t%.1f\t%.1f\t%d\t\n", s.Name, m.EPS, joinFloats(s.EPSRound, "%.0f"), s.Best.EPS,
			m.PublishEPS, m.P50ms, m.P99ms, m.MaxMs, m.CPUPerEvent, s.HTTPConns)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "noops/jetstream %.3f (round by round %s; best rounds %.3f); target >= %.1f: %s\n", rep.NoopsJetStream,
		joinFloats(rep.NoopsJetStreamByRound, "%.3f"), rep.NoopsJetStreamBest, target, yesNo(rep.TargetMet))
	if rep.IdemOffJetStream != 0 {
		fmt.Fprintf(w, "noops-idem-off/jetstream %.3f\n", rep.IdemOffJetStream)
	}
	fmt.Fprintf(w, "noops/jetstream-nohttp %.3f; jetstream/jetstream-nohttp %.3f (what the HTTP hop leaves of the ceiling)\n",
		rep.NoopsNoHTTP, rep.JetStreamNoHTTP)
	if rep.LightRate > 0 {
		fmt.Fprintf(w, "\nlight load, latency of the path itself: %d events from 1 publisher paced at %d events/s\n", rep.LightEvents, rep.LightRate)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%-16s\tp50 ms\tp99 ms\tmax ms\t\n", "side")
		for _, s := range rep.Sides {
			if l := s.Light; l != nil {
				fmt.Fprintf(tw, "%-16s\t%.3f\t%.3f\t%.1f\t\n", s.Name, l.P50ms, l.P99ms, l.MaxMs)
			}
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	for _, s := range rep.Sides {
		if s.MissedHeartbeats > 0 {
			fmt.Fprintf(w, "%s: the consumer's Next reported a missed heartbeat %d times (not terminal: the workers went on)\n", s.Name, s.MissedHeartbeats)
		}
	}
	fmt.Fprintln(w, "every event handled exactly once, first attempt, 200, per round and side; every stream drained; no dead letters")
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
