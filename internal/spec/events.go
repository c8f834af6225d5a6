package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Trigger is one entry of the manifest's triggers: a topic subscription
// (each event on a matching topic is pushed to the app) or a cron
// schedule (the app gets an event at each tick). Exactly one is set.
type Trigger struct {
	// Topic is a topic or a pattern: "orders.created", "orders.*" (one
	// token), "orders.>" (one or more tokens).
	Topic string `yaml:"topic" json:"topic,omitempty"`
	// Cron is a five-field schedule ("*/5 * * * *"), a descriptor
	// ("@hourly", "@every 30s"), optionally with a time zone first
	// ("CRON_TZ=Europe/Paris 0 9 * * 1-5"); the server's zone otherwise.
	Cron string `yaml:"cron" json:"cron,omitempty"`
}

// Events is the manifest's events section: the topics the app's
// sandboxes may publish to through the gateway (none by default).
type Events struct {
	Publish []string `yaml:"publish" json:"publish,omitempty"`
}

// Function says how the platform invokes the app for events, cron ticks
// and asynchronous invocations. Every field has a default.
type Function struct {
	// Path is where events are POSTed (default "/").
	Path string `yaml:"path" json:"path,omitempty"`
	// Timeout bounds one attempt (default 30s, at most 1m: the gateway
	// waits a minute for an answer's headers).
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// Retries after the first attempt (default 2, like Lambda's
	// asynchronous invocation; 0 to 100). Retries is a pointer so that
	// an explicit 0 is kept.
	Retries *int `yaml:"retries" json:"retries,omitempty"`
	// Backoff is the wait before the first retry, doubled for each next
	// one up to MaxBackoff (defaults 1s and 5m).
	Backoff    Duration `yaml:"backoff" json:"backoff,omitempty"`
	MaxBackoff Duration `yaml:"max_backoff" json:"max_backoff,omitempty"`
	// MaxAge is how old an event may get before it goes to the dead
	// letters instead of another attempt (default 6h, 1m to 14d).
	MaxAge Duration `yaml:"max_age" json:"max_age,omitempty"`
	// Concurrency is how many deliveries run at once (default 10, 1 to
	// 1000).
	Concurrency int `yaml:"concurrency" json:"concurrency,omitempty"`
	// Ordered delivers the events of one partition key one at a time in
	// the order they were published; retries then hold that key back.
	Ordered bool `yaml:"ordered" json:"ordered,omitempty"`
	// Idempotency is how long the platform remembers a request's
	// Idempotency-Key (or an event's ID) and its response (default 1h,
	// 1m to 7d); "off" turns it off.
	Idempotency string `yaml:"idempotency" json:"idempotency,omitempty"`
}

// Function defaults and bounds.
const (
	DefaultFunctionPath    = "/"
	DefaultFunctionTimeout = Duration(30 * time.Second)
	DefaultRetries         = 2
	DefaultBackoff         = Duration(time.Second)
	DefaultMaxBackoff      = Duration(5 * time.Minute)
	DefaultMaxAge          = Duration(6 * time.Hour)
	DefaultConcurrency     = 10
	DefaultIdempotency     = time.Hour
	MaxTriggers            = 20
	MaxTopicLen            = 200
)

func (f *Function) defaults() {
	if f.Path == "" {
		f.Path = DefaultFunctionPath
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultFunctionTimeout
	}
	if f.Retries == nil {
		n := DefaultRetries
		f.Retries = &n
	}
	if f.Backoff == 0 {
		f.Backoff = DefaultBackoff
	}
	if f.MaxBackoff == 0 {
		f.MaxBackoff = DefaultMaxBackoff
	}
	if f.MaxAge == 0 {
		f.MaxAge = DefaultMaxAge
	}
	if f.Concurrency == 0 {
		f.Concurrency = DefaultConcurrency
	}
}

// WithDefaults returns f with every unset field at its default: what a
// release recorded before the section existed runs with.
func (f Function) WithDefaults() Function {
	if f.Retries != nil {
		n := *f.Retries
		f.Retries = &n
	}
	f.defaults()
	return f
}

// Attempts is the first attempt plus the retries.
func (f Function) Attempts() int {
	if f.Retries == nil {
		return 1 + DefaultRetries
	}
	return 1 + *f.Retries
}

// IdempotencyTTL returns how long idempotency records live, 0 when off.
func (f Function) IdempotencyTTL() time.Duration {
	switch f.Idempotency {
	case "":
		return DefaultIdempotency
	case "off":
		return 0
	}
	d, err := time.ParseDuration(f.Idempotency)
	if err != nil {
		return DefaultIdempotency // Validate refused it
	}
	return d
}

func (f Function) validate() []string {
	var errs []string
	if !strings.HasPrefix(f.Path, "/") {
		errs = append(errs, fmt.Sprintf("function.path: %q must start with /", f.Path))
	}
	check := func(name string, d Duration, lo, hi time.Duration) {
		if time.Duration(d) < lo || time.Duration(d) > hi {
			errs = append(errs, fmt.Sprintf("function.%s: %s is out of range (%s to %s)", name, d, lo, hi))
		}
	}
	// The gateway waits 60 s for an answer's headers (proxy.go).
	check("timeout", f.Timeout, 100*time.Millisecond, time.Minute)
	check("backoff", f.Backoff, 10*time.Millisecond, time.Hour)
	check("max_backoff", f.MaxBackoff, time.Duration(f.Backoff), 6*time.Hour)
	check("max_age", f.MaxAge, time.Minute, 14*24*time.Hour)
	if f.Retries != nil && (*f.Retries < 0 || *f.Retries > 100) {
		errs = append(errs, fmt.Sprintf("function.retries: %d is out of range (0-100)", *f.Retries))
	}
	if f.Concurrency < 1 || f.Concurrency > 1000 {
		errs = append(errs, fmt.Sprintf("function.concurrency: %d is out of range (1-1000)", f.Concurrency))
	}
	if f.Idempotency != "" && f.Idempotency != "off" {
		d, err := time.ParseDuration(f.Idempotency)
		if err != nil || d < time.Minute || d > 7*24*time.Hour {
			errs = append(errs, fmt.Sprintf("function.idempotency: %q is not a duration from 1m to 168h, or off", f.Idempotency))
		}
	}
	return errs
}

// cronParser reads five-field schedules and descriptors, as `crontab`
// does; CRON_TZ= and TZ= prefixes name a time zone.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a cron trigger's schedule.
func ParseCron(expr string) (cron.Schedule, error) {
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("cron %q does not parse: %v (use five fields: minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\", or @hourly, @every 30s)", expr, err)
	}
	return s, nil
}

func validateTriggers(ts []Trigger) []string {
	var errs []string
	if len(ts) > MaxTriggers {
		errs = append(errs, fmt.Sprintf("triggers: %d entries, at most %d", len(ts), MaxTriggers))
	}
	seen := map[Trigger]bool{}
	for i, t := range ts {
		name := fmt.Sprintf("triggers[%d]", i)
		switch {
		case (t.Topic == "") == (t.Cron == ""):
			errs = append(errs, name+": set one of topic or cron")
		case t.Topic != "":
			if err := ValidTopicPattern(t.Topic); err != nil {
				errs = append(errs, name+".topic: "+err.Error())
			}
		default:
			if _, err := ParseCron(t.Cron); err != nil {
				errs = append(errs, name+".cron: "+err.Error())
			}
		}
		if seen[t] {
			errs = append(errs, name+": listed twice")
		}
		seen[t] = true
	}
	return errs
}

func (e Events) validate() []string {
	var errs []string
	for i, p := range e.Publish {
		if err := ValidTopicPattern(p); err != nil {
			errs = append(errs, fmt.Sprintf("events.publish[%d]: %v", i, err))
		}
	}
	return errs
}

// ValidTopic checks a topic events are published to: dot-separated tokens
// of letters, digits, '-' and '_', at most MaxTopicLen bytes.
func ValidTopic(t string) error { return validTopic(t, false) }

// ValidTopicPattern checks a topic or a pattern with the wildcards '*'
// (one whole token) and '>' (the rest, as the last token).
func ValidTopicPattern(t string) error { return validTopic(t, true) }

func validTopic(t string, wild bool) error {
	if t == "" {
		return fmt.Errorf("the topic is empty")
	}
	if len(t) > MaxTopicLen {
		return fmt.Errorf("topic %.40q… is %d bytes long, at most %d", t, len(t), MaxTopicLen)
	}
	tokens := strings.Split(t, ".")
	for i, tok := range tokens {
		if wild && (tok == "*" || tok == ">" && i == len(tokens)-1) {
			continue
		}
		if tok == "" {
			return fmt.Errorf("topic %q has an empty token: write tokens separated by single dots", t)
		}
		for j := 0; j < len(tok); j++ {
			c := tok[j]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				what := "letters, digits, '-' and '_' between dots"
				if wild {
					what += " ('*' and a final '>' as whole tokens)"
				}
				return fmt.Errorf("topic %q has the forbidden character %q: use %s", t, c, what)
			}
		}
	}
	return nil
}

// TopicMatches reports whether a topic matches a pattern.
func TopicMatches(pattern, topic string) bool {
	p, t := strings.Split(pattern, "."), strings.Split(topic, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(t) > i
		}
		if i >= len(t) || tok != "*" && tok != t[i] {
			return false
		}
	}
	return len(p) == len(t)
}
