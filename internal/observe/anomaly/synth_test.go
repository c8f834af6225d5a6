package anomaly

import (
	"math"
	"math/rand/v2"
	"time"
)

// Labelled synthetic series at 5-minute buckets: one app's request rate
// (requests per second), error ratio and p95 latency (seconds), with
// daily and weekly seasons and realistic noise, and copies of them with
// injected anomalies whose start and end are known.

const (
	bucketsPerHour = 12
	bucketsPerDay  = 24 * bucketsPerHour
	bucketsPerWeek = 7 * bucketsPerDay
)

// synthStart is a Monday at midnight UTC.
var synthStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type kind int

const (
	rateKind kind = iota
	errorKind
	latencyKind
)

func (k kind) String() string { return [...]string{"rate", "errors", "latency"}[k] }

func (k kind) config() Config {
	return [...]func() Config{RequestRate, ErrorRatio, Latency}[k]()
}

// app is one app's clean series.
type app struct {
	series [3][]float64 // by kind
	count  []float64    // requests per bucket, for the error ratio
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

// poisson draws from a Poisson distribution of mean mu: Knuth's method
// for a small mean, a rounded normal approximation for a large one.
func poisson(r *rand.Rand, mu float64) float64 {
	if mu > 30 {
		return max(0, math.Round(mu+math.Sqrt(mu)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-mu), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// load is the seasonal shape of traffic at bucket i: a daily sine peaking
// mid-afternoon and quieter weekends (0.24 to 1.6).
func load(i int) float64 {
	h := float64(i%bucketsPerDay) / bucketsPerHour
	day := (i / bucketsPerDay) % 7 // 0 = Monday
	f := 1 + 0.6*math.Sin(2*math.Pi*(h-9)/24)
	if day >= 5 {
		f *= 0.6
	}
	return f
}

// newApp generates weeks of clean series for one app from seed.
func newApp(seed uint64, weeks int) *app {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	n := weeks * bucketsPerWeek
	a := &app{count: make([]float64, n)}
	for k := range a.series {
		a.series[k] = make([]float64, n)
	}
	level := 0.5 * math.Pow(100, r.Float64())   // 0.5 to 50 requests per second
	errP := 0.001 * math.Pow(10, r.Float64())   // 0.1% to 1% errors
	latency := 0.05 * math.Pow(10, r.Float64()) // 50 ms to 500 ms
	weekly := 1.0
	for i := range n {
		if i%bucketsPerWeek == 0 {
			weekly = math.Exp(0.03 * r.NormFloat64()) // week-to-week drift
		}
		f := load(i)
		mu := level * f * weekly * math.Exp(0.05*r.NormFloat64()) * 300 // overdispersed
		c := max(1, poisson(r, mu))
		a.count[i] = c
		a.series[rateKind][i] = c / 300
		ratio := poisson(r, c*errP) / c
		if r.IntN(200) == 0 { // a one-bucket burst of errors
			ratio += 0.01 + 0.04*r.Float64()
		}
		a.series[errorKind][i] = min(1, ratio)
		p95 := latency * (1 + 0.2*(f-1)) * math.Exp(0.15*r.NormFloat64())
		if r.IntN(300) == 0 { // a one-bucket slow outlier
			p95 *= 2 + 2*r.Float64()
		}
		a.series[latencyKind][i] = p95
	}
	return a
}

// label is one injected anomaly: buckets [start, end) of series kind.
type label struct {
	kind       kind
	what       string
	start, end int
}

// inject returns a copy of a's series with anomalies in weeks [from, to):
// for each kind, one anomaly a day at a random time, of a random type and
// size, some too small to be in scope. Level shifts are in shifted.
func inject(seed uint64, a *app, from, to int) ([3][]float64, []label) {
	r := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	var out [3][]float64
	var labels []label
	for k := range out {
		out[k] = append([]float64(nil), a.series[k]...)
		for day := from * 7; day < to*7; day++ {
			start := day*bucketsPerDay + r.IntN(bucketsPerDay-6*bucketsPerHour)
			dur := 6 + r.IntN(7) // 30 to 60 minutes
			s := out[k]
			var what string
			switch kind(k) {
			case rateKind:
				switch r.IntN(3) {
				case 0:
					what = "spike"
					f := 1.3 + 2.7*r.Float64()
					for i := start; i < start+dur; i++ {
						s[i] *= f
					}
				case 1:
					what = "drop to zero"
					for i := start; i < start+dur; i++ {
						s[i] = 0
					}
				default:
					what = "dip"
					f := 0.3 + 0.5*r.Float64()
					for i := start; i < start+dur; i++ {
						s[i] *= f
					}
				}
			case errorKind:
				what = "error spike"
				add := 0.005 + 0.15*r.Float64()
				for i := start; i < start+dur; i++ {
					s[i] = min(1, s[i]+add)
				}
			case latencyKind:
				if r.IntN(2) == 0 {
					what = "latency spike"
					f := 1.2 + 3.8*r.Float64()
					for i := start; i < start+dur; i++ {
						s[i] *= f
					}
				} else {
					what = "slow ramp"
					dur = 24 + r.IntN(25) // 2 to 4 hours
					top := 2 + 4*r.Float64()
					for i := start; i < start+dur; i++ {
						s[i] *= 1 + (top-1)*float64(i-start+1)/float64(dur)
					}
				}
			}
			labels = append(labels, label{kind(k), what, start, start + dur})
		}
	}
	return out, labels
}

// shifted returns a copy of a's series kind with a lasting level shift by
// factor from bucket start to the end.
func shifted(a *app, k kind, start int, factor float64) []float64 {
	s := append([]float64(nil), a.series[k]...)
	for i := start; i < len(s); i++ {
		s[i] *= factor
	}
	return s
}

// runSeries feeds xs to a new detector for cfg from synthStart.
func runSeries(cfg Config, xs []float64) []Verdict {
	d, err := New(cfg)
	if err != nil {
		panic(err)
	}
	out := make([]Verdict, len(xs))
	for i, x := range xs {
		out[i] = d.Observe(synthStart.Add(time.Duration(i)*DefaultBucket), x)
	}
	return out
}

// episodes returns the buckets at which firing starts, in [from, to).
func episodes(vs []Verdict, from, to int) []int {
	var out []int
	for i := max(from, 1); i < to; i++ {
		if vs[i].Firing && !vs[i-1].Firing {
			out = append(out, i)
		}
	}
	return out
}
