package spec

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Scale is run.scale: the number of web replicas follows the load between
// Min and Max, as Knative's KPA does it: the average number of requests in
// flight over a stable window, divided by Concurrency, is the replica
// count; when the average over the panic window (a tenth of the stable
// window) asks for twice the replicas that run, the count only rises until
// the load has been stable for a whole window. With Min 0, an app that
// received no request for Idle scales to zero, and the gateway holds the
// next request while a sandbox starts.
type Scale struct {
	Min         int `yaml:"min" json:"min"`
	Max         int `yaml:"max" json:"max"`
	Concurrency int `yaml:"concurrency" json:"concurrency"` // target requests in flight per replica
	// Idle is how long an app at Min 0 may go without a request before it
	// scales to zero.
	Idle Duration `yaml:"idle" json:"idle"`
	// Retain keeps the last replica at least this long after it started,
	// whatever Idle says: a replica that a cold start paid for serves more
	// than one burst (Knative's scale-to-zero pod retention).
	Retain Duration `yaml:"retain" json:"retain"`
	// Window is the stable window; the panic window is a tenth of it.
	Window Duration `yaml:"window" json:"window"`
}

// Defaults of run.scale, Knative's where it has one.
const (
	DefaultScaleMax         = 10
	DefaultScaleConcurrency = 100
	DefaultScaleIdle        = Duration(60 * time.Second)
	DefaultScaleWindow      = Duration(60 * time.Second)
	MaxReplicas             = 100
)

// defaults fills the unset fields of a scale section.
func (s *Scale) defaults() {
	if s.Max == 0 {
		s.Max = max(DefaultScaleMax, s.Min)
	}
	if s.Concurrency == 0 {
		s.Concurrency = DefaultScaleConcurrency
	}
	if s.Idle == 0 {
		s.Idle = DefaultScaleIdle
	}
	if s.Window == 0 {
		s.Window = DefaultScaleWindow
	}
}

// validate returns one message per field that makes no sense.
func (s *Scale) validate() []string {
	var errs []string
	if s.Min < 0 || s.Min > MaxReplicas {
		errs = append(errs, fmt.Sprintf("run.scale.min: %d is out of range (0-%d)", s.Min, MaxReplicas))
	}
	if s.Max < 1 || s.Max > MaxReplicas {
		errs = append(errs, fmt.Sprintf("run.scale.max: %d is out of range (1-%d)", s.Max, MaxReplicas))
	} else if s.Max < s.Min {
		errs = append(errs, fmt.Sprintf("run.scale.max: %d is below run.scale.min (%d)", s.Max, s.Min))
	}
	if s.Concurrency < 1 || s.Concurrency > 10000 {
		errs = append(errs, fmt.Sprintf("run.scale.concurrency: %d is out of range (1-10000 requests in flight per replica)", s.Concurrency))
	}
	check := func(name string, d Duration, lo, hi time.Duration) {
		if time.Duration(d) < lo || time.Duration(d) > hi {
			errs = append(errs, fmt.Sprintf("run.scale.%s: %s is out of range (%s-%s)", name, d, lo, hi))
		}
	}
	check("idle", s.Idle, time.Second, 24*time.Hour)
	check("retain", s.Retain, 0, 24*time.Hour)
	check("window", s.Window, 6*time.Second, time.Hour)
	return errs
}

// Initial is how many replicas a release of an app with this scale section
// starts with: Min, and at least one, so that a deploy proves the release
// serves before anything depends on it.
func (s *Scale) Initial() int { return max(s.Min, 1) }

// Duration is a time span written as Go writes one ("90s", "5m", "1h30m").
type Duration time.Duration

// String formats d as Go does.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts "60s" or "1m30s"; a bare number is refused, as its
// unit would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be written like 60s, 5m or 1h30m", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration: write e.g. 60s, 5m or 1h30m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes d as "60s", which UnmarshalJSON reads.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.String() + `"`), nil
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("duration %s is not a string", b)
	}
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
