// Package spec is the app manifest (noops.yaml): its types, strict decoding
// with line numbers, defaults and validation. It is a leaf package: it
// imports nothing of noops but errkind.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"noops/internal/errkind"
)

// FileName is the manifest's name in an app folder.
const FileName = "noops.yaml"

// Defaults applied to a manifest's run section.
const (
	DefaultPort     = 8080
	DefaultReplicas = 1
	DefaultMemory   = 256 << 20
	DefaultPids     = 256
	DefaultHealth   = "/"
)

// Manifest is the decoded noops.yaml. Sections that later issues implement
// are accepted here only once they work; an unknown field is an error.
type Manifest struct {
	Name  string `yaml:"name" json:"name,omitempty"`
	Build Build  `yaml:"build" json:"build"`
	Run   Run    `yaml:"run" json:"run"`
	// Access says who may reach the app; see Access.
	Access Access `yaml:"access" json:"access"`
	// Egress lists the only destinations (HOST:PORT) the app's sandboxes
	// may connect to; none by default.
	Egress []string `yaml:"egress" json:"egress,omitempty"`
	// WAF configures the web application firewall in front of the app;
	// RateLimits its rate-based rules. See WAF and RateLimit.
	WAF        WAF         `yaml:"waf" json:"waf"`
	RateLimits []RateLimit `yaml:"rate_limits" json:"rate_limits,omitempty"`
	// Triggers push events to the app (topics, cron); Function says how;
	// Events lists the topics the app may publish to. See events.go.
	Triggers []Trigger `yaml:"triggers" json:"triggers,omitempty"`
	Function Function  `yaml:"function" json:"function"`
	Events   Events    `yaml:"events" json:"events"`
	// Monitors are uptime checks besides the health path's; Alerts the
	// rules that notify. See observe.go.
	Monitors []Monitor `yaml:"monitors" json:"monitors,omitempty"`
	Alerts   []Alert   `yaml:"alerts" json:"alerts,omitempty"`
}

// Build configures the build.
type Build struct {
	Env map[string]string `yaml:"env" json:"env,omitempty"`
}

// Run configures how the app runs.
type Run struct {
	Port     int               `yaml:"port" json:"port"`
	Replicas int               `yaml:"replicas" json:"replicas"`
	Memory   Quantity          `yaml:"memory" json:"memory"`
	Pids     int64             `yaml:"pids" json:"pids"`
	Health   string            `yaml:"health" json:"health"`
	Env      map[string]string `yaml:"env" json:"env,omitempty"`
	// Workers is how many sandboxes run the image's worker process (0 to
	// 100; 0 runs none). Unset means 1 when the image has a worker
	// process and 0 otherwise: whether it has one is known only once it
	// is built, so Default leaves it unset.
	Workers *int `yaml:"workers" json:"workers,omitempty"`
	// Scale makes the web replica count follow the load, down to zero
	// when Min is 0; Replicas is then the count a release starts with
	// (Scale.Initial). Without it the count is Replicas, fixed.
	Scale *Scale `yaml:"scale" json:"scale,omitempty"`
}

// MaxWorkers is the largest run.workers.
const MaxWorkers = 100

// Parse decodes a manifest strictly: unknown fields, duplicate keys and
// type mismatches are errors that carry the line number. The result has
// defaults applied and is validated.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return nil, errkind.Errorf(errkind.Invalid, "%s: %s", FileName, yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errkind.Errorf(errkind.Invalid, "%s: only one YAML document is allowed", FileName)
	}
	if m.Run.Scale != nil && m.Run.Replicas != 0 {
		return nil, errkind.Errorf(errkind.Invalid, "%s: run.replicas and run.scale: set one (a fixed count, or a range that follows the load)", FileName)
	}
	m.Default()
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Load reads dir/noops.yaml. A folder without one gets the defaults.
func Load(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		data = nil
	} else if err != nil {
		return nil, fmt.Errorf("reading %s: %w", FileName, err)
	}
	return Parse(data)
}

// yamlMessage turns yaml.v3's errors ("yaml: unmarshal errors:\n  line 3:
// field prot not found in type spec.Run") into one readable line.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = strings.Replace(e, " in type spec.", " in section ", 1)
			msgs[i] = sectionName.ReplaceAllStringFunc(msgs[i], strings.ToLower)
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

var sectionName = regexp.MustCompile(`section [A-Z]\w*`)

// Default fills unset fields with their defaults.
func (m *Manifest) Default() {
	if m.Run.Port == 0 {
		m.Run.Port = DefaultPort
	}
	if m.Run.Scale != nil {
		m.Run.Scale.defaults()
		if m.Run.Replicas == 0 {
			m.Run.Replicas = m.Run.Scale.Initial()
		}
	}
	if m.Run.Replicas == 0 {
		m.Run.Replicas = DefaultReplicas
	}
	if m.Run.Memory == 0 {
		m.Run.Memory = DefaultMemory
	}
	if m.Run.Pids == 0 {
		m.Run.Pids = DefaultPids
	}
	if m.Run.Health == "" {
		m.Run.Health = DefaultHealth
	}
	m.Access.defaults()
	m.WAF.defaults()
	for i := range m.RateLimits {
		m.RateLimits[i].defaults()
	}
	m.Function.defaults()
}

var (
	appName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ValidAppName checks an app name: it becomes a DNS label and part of
// sandbox IDs, so it is short, lower case and starts with a letter.
func ValidAppName(name string) error {
	if !appName.MatchString(name) || strings.HasSuffix(name, "-") {
		return errkind.Errorf(errkind.Invalid, "app name %q is not valid: use 1-30 lower-case letters, digits and '-', starting with a letter", name)
	}
	if reserved[name] {
		return errkind.Errorf(errkind.Invalid, "app name %q is reserved: https://%s.<domain> is the platform's", name, name)
	}
	return nil
}

// reserved are names whose host the platform serves itself.
var reserved = map[string]bool{"registry": true, "api": true}

// ValidEnvName checks an environment variable name.
func ValidEnvName(k string) error {
	if !envName.MatchString(k) {
		return errkind.Errorf(errkind.Invalid, "environment variable name %q is not valid: use letters, digits and '_', not starting with a digit", k)
	}
	return nil
}

// Validate checks values that decode but make no sense.
func (m *Manifest) Validate() error {
	var errs []string
	if m.Name != "" {
		if err := ValidAppName(m.Name); err != nil {
			errs = append(errs, "name: "+err.Error())
		}
	}
	r := m.Run
	if r.Port < 1 || r.Port > 65535 {
		errs = append(errs, fmt.Sprintf("run.port: %d is not a TCP port (1-65535)", r.Port))
	}
	if r.Replicas < 1 || r.Replicas > MaxReplicas {
		errs = append(errs, fmt.Sprintf("run.replicas: %d is out of range (1-%d)", r.Replicas, MaxReplicas))
	}
	if r.Scale != nil {
		errs = append(errs, r.Scale.validate()...)
	}
	if r.Memory < 16<<20 {
		errs = append(errs, fmt.Sprintf("run.memory: %s is below the minimum of 16Mi", r.Memory))
	}
	if r.Pids < 8 || r.Pids > 65536 {
		errs = append(errs, fmt.Sprintf("run.pids: %d is out of range (8-65536)", r.Pids))
	}
	if r.Workers != nil && (*r.Workers < 0 || *r.Workers > MaxWorkers) {
		errs = append(errs, fmt.Sprintf("run.workers: %d is out of range (0-%d)", *r.Workers, MaxWorkers))
	}
	if !strings.HasPrefix(r.Health, "/") {
		errs = append(errs, fmt.Sprintf("run.health: %q must be a path starting with /", r.Health))
	}
	for _, section := range []struct {
		name string
		env  map[string]string
	}{{"build.env", m.Build.Env}, {"run.env", r.Env}} {
		for _, k := range sortedKeys(section.env) {
			if err := ValidEnvName(k); err != nil {
				errs = append(errs, section.name+": "+err.Error())
			}
		}
	}
	errs = append(errs, m.Access.validate()...)
	errs = append(errs, validateEgress(m.Egress)...)
	errs = append(errs, m.WAF.validate()...)
	errs = append(errs, validateRates(m.RateLimits)...)
	errs = append(errs, validateTriggers(m.Triggers)...)
	errs = append(errs, m.Function.validate()...)
	errs = append(errs, m.Events.validate()...)
	errs = append(errs, validateMonitors(m.Monitors)...)
	errs = append(errs, validateAlerts(m.Alerts, m.Monitors)...)
	if len(errs) > 0 {
		return errkind.Errorf(errkind.Invalid, "%s: %s", FileName, strings.Join(errs, "; "))
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
