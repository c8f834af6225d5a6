// Command events is the benchmark of issue 7: end-to-end delivery of
// events, from a publisher to a function's HTTP handler, through the
// platform's bus (noops/internal/events) against plain JetStream on the
// same kind of embedded server, in one process on 127.0.0.1.
//
//	events [--events 20000] [--size 256] [--publishers 8]
//	       [--concurrency 32] [--rounds 3] [--warmup 2000]
//	       [--idem-off] [--light-rate 500] [--light-events 1000]
//	       [--timeout 2m] [--out-dir bench/out]
//	       [--profile auto|on|off]
//
// Sides, each on an embedded NATS server of its own
// (events.StartEmbedded, file storage in a temporary folder, in-process
// connections, no port), each with an HTTP handler of its own on
// 127.0.0.1 (net/http, keep-alive) that answers 200 at once:
//
//   - noops: events.Open on the server, a function (events.Function,
//     App "bench", topic "bench.load", spec.Function{Concurrency: N},
//     every other setting at its default: idempotency records on, 30 s
//     timeout, retries) delivered by events.HTTPTarget to the handler;
//     --publishers goroutines call bus.Publish, each waiting for
//     JetStream's ack;
//   - noops-idem-off (with --idem-off, report only): the same with
//     `idempotency: off`;
//   - jetstream: a stream with file storage on "bench.load" (interest
//     retention, as the bus's event stream), --publishers goroutines
//     calling js.Publish synchronously, a durable pull consumer with
//     explicit ack (the bus's MaxAckPending and pull batch) consumed with
//     Messages by --concurrency workers that POST the data to the
//     handler, check the 200, then ack;
//   - jetstream-nohttp: the same workers without the POST: they hand the
//     data to the handler's code directly (a ceiling).
//
// One round publishes --events events of --size bytes (a run ID, a
// sequence number and the monotonic time of the publish call, then
// padding) and ends when the handler has seen every one: events/s is
// the count over the time from the first publish call to the last
// receipt; latency is, per event, the handler's receive time minus the
// publish time carried in the data (one process, one monotonic clock).
// Every event must reach the handler exactly once, as a 200, on its first
// attempt: a duplicate, a missing event (after --timeout), an event of
// another round, a redelivery or a non-200 fails the run (exit 1). After
// each round the side's stream must drain (every event acked). Sides take
// turns within a round, the order rotating; each side first gets
// --warmup events, not counted. The median round by events/s is reported
// (its p50 and p99), with the best round and every round beside it.
// Under such a burst the publishers outrun the deliveries, so latency is
// mostly the wait behind the backlog; a light-load run then gives each
// side --light-events events from one publisher paced at --light-rate
// events/s, well under every side's capacity: its p50 and p99 are the
// latency of the path itself.
// Tables go to stdout, progress to stderr, the results to
// OUT-DIR/events.json. --profile on (or auto, when noops is under 0.7x
// jetstream) then runs one more round (3x --events) of noops, of
// noops-idem-off and of jetstream under the CPU profiler (the whole
// process: publishers, NATS server, bus, handler):
// OUT-DIR/events-SIDE-cpu.out.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

func main() {
	if err := drive(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}

type config struct {
	events      int
	size        int
	publishers  int
	concurrency int
	rounds      int
	warmup      int
	idemOff     bool
	lightRate   int
	lightEvents int
	timeout     time.Duration
	outDir      string
	profile     string
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("events", flag.ExitOnError)
	n := fs.Int("events", 20000, "events per round and side")
	size := fs.Int("size", 256, "bytes of data per event")
	pubs := fs.Int("publishers", 8, "publishing goroutines, each waiting for the ack")
	conc := fs.Int("concurrency", 32, "deliveries in flight (the function's concurrency, the baseline's workers)")
	rounds := fs.Int("rounds", 3, "rounds per side")
	warmup := fs.Int("warmup", 2000, "events per side before the first round, not counted")
	idemOff := fs.Bool("idem-off", true, "also measure noops with idempotency off (report only)")
	lightRate := fs.Int("light-rate", 500, "events/s of the light-load latency run (1 publisher, paced); 0: none")
	lightEvents := fs.Int("light-events", 1000, "events of the light-load latency run")
	timeout := fs.Duration("timeout", 2*time.Minute, "longest round: publishing and delivering every event")
	outDir := fs.String("out-dir", "bench/out", "where events.json and the profiles go")
	profile := fs.String("profile", "auto", "CPU profiles of noops and jetstream afterwards: on, off, or auto (when noops is under 0.7x)")
	_ = fs.Parse(args)
	c := config{events: *n, size: *size, publishers: *pubs, concurrency: *conc, rounds: *rounds, warmup: *warmup,
		idemOff: *idemOff, lightRate: *lightRate, lightEvents: *lightEvents, timeout: *timeout, outDir: *outDir, profile: *profile}
	// The run is bounded: it stops by itself within minutes.
	switch {
	case c.events < 100 || c.events > 1_000_000:
		return c, errors.New("--events must be 100-1000000")
	case c.size < headerLen || c.size > 64<<10:
		return c, fmt.Errorf("--size must be %d-65536 bytes", headerLen)
	case c.publishers < 1 || c.publishers > 256:
		return c, errors.New("--publishers must be 1-256")
	case c.concurrency < 1 || c.concurrency > 1000:
		return c, errors.New("--concurrency must be 1-1000 (the bus's bounds)")
	case c.rounds < 1 || c.rounds > 20:
		return c, errors.New("--rounds must be 1-20")
	case c.warmup < 0 || c.warmup > c.events:
		return c, errors.New("--warmup must be 0 to --events")
	case c.lightRate < 0 || c.lightRate > 100_000:
		return c, errors.New("--light-rate must be 0-100000")
	case c.lightRate > 0 && (c.lightEvents < 100 || float64(c.lightEvents)/float64(c.lightRate) > 60):
		return c, errors.New("--light-events must be 100 or more and last at most 60 s at --light-rate")
	case c.timeout < time.Second || c.timeout > 10*time.Minute:
		return c, errors.New("--timeout must be 1s-10m")
	case c.profile != "auto" && c.profile != "on" && c.profile != "off":
		return c, fmt.Errorf("--profile %q: use auto, on or off", c.profile)
	}
	return c, nil
}

func drive(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "noops-bench-events.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	names := []string{sideNoops}
	if cfg.idemOff {
		names = append(names, sideNoopsIdemOff)
	}
	names = append(names, sideJetStream, sideJetStreamNoHTTP)
	var sides []*side
	defer func() {
		for _, s := range sides {
			s.close()
		}
	}()
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "starting %s (embedded server in %s)\n", name, filepath.Join(work, name))
		s, err := startSide(name, filepath.Join(work, name), cfg)
		if err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		sides = append(sides, s)
	}
	rep, err := measureAll(sides, cfg)
	if err != nil {
		return err
	}
	rep.print(os.Stdout)
	if cfg.profile == "on" || cfg.profile == "auto" && !rep.TargetMet {
		for _, s := range sides {
			if s.name == sideJetStreamNoHTTP {
				continue
			}
			file := filepath.Join(cfg.outDir, "events-"+s.name+"-cpu.out")
			fmt.Fprintf(os.Stderr, "profiling one round of %s (%d events)\n", s.name, 3*cfg.events)
			r, err := s.round(cfg, 3*cfg.events, file)
			if err != nil {
				return fmt.Errorf("profiling %s: %w", s.name, err)
			}
			rep.Profiles = append(rep.Profiles, profileFile{Side: s.name, EPS: r.EPS, CPUPerEvent: r.CPUPerEvent, CPU: file})
			fmt.Fprintf(os.Stdout, "under the CPU profiler, one round of %d events: %-15s %.0f events/s, %.1f µs CPU per event (%s)\n",
				3*cfg.events, s.name, r.EPS, r.CPUPerEvent, filepath.Base(file))
		}
	}
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.outDir, "events.json"), append(out, '\n'), 0o644)
}

// modules returns the versions of the modules that matter to the result.
func modules() map[string]string {
	m := map[string]string{"go": runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return m
	}
	for _, d := range bi.Deps {
		if strings.HasPrefix(d.Path, "github.com/nats-io/") {
			m[strings.TrimPrefix(d.Path, "github.com/nats-io/")] = d.Version
		}
	}
	return m
}
