package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"noops/internal/notify"
)

// The state file: the active alerts, the groups' notification state and
// the latest resolved alerts.
const (
	stateVersion  = 1
	maxStateBytes = 64 << 20
)

type stateFile struct {
	Version int          `json:"version"`
	Alerts  []stateAlert `json:"alerts"`
	Groups  []stateGroup `json:"groups"`
	Recent  []stateAlert `json:"recent"`
}

type stateAlert struct {
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	State       string            `json:"state"`
	Value       string            `json:"value"` // strconv, so that ±Inf survive JSON
	ActiveAt    time.Time         `json:"activeAt"`
	FiredAt     time.Time         `json:"firedAt,omitzero"`
	ResolvedAt  time.Time         `json:"resolvedAt,omitzero"`
	Changes     []Marker          `json:"changes,omitempty"`
}

type stateGroup struct {
	Rule      string       `json:"rule"`
	App       string       `json:"app"`
	Severity  string       `json:"severity"`
	CreatedAt time.Time    `json:"createdAt"`
	LastSent  time.Time    `json:"lastSent,omitzero"`
	Seq       int          `json:"seq"`
	Reminders int          `json:"reminders"`
	Notified  []string     `json:"notified,omitempty"`
	Resolved  []stateAlert `json:"resolved,omitempty"`
}

func toState(in *instance) stateAlert {
	return stateAlert{
		Rule: in.rule, Labels: in.labels, Annotations: in.annotations, State: in.state,
		Value: strconv.FormatFloat(in.value, 'g', -1, 64), ActiveAt: in.activeAt, FiredAt: in.firedAt,
		ResolvedAt: in.resolvedAt, Changes: in.changes,
	}
}

// snapshotLocked is the state to save.
func (e *Engine) snapshotLocked() stateFile {
	st := stateFile{Version: stateVersion}
	for _, rule := range slices.Sorted(maps.Keys(e.active)) {
		alerts := e.active[rule]
		for _, fp := range slices.Sorted(maps.Keys(alerts)) {
			st.Alerts = append(st.Alerts, toState(alerts[fp]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(e.groups)) {
		g := e.groups[id]
		sg := stateGroup{Rule: g.rule, App: g.app, Severity: g.severity, CreatedAt: g.createdAt, LastSent: g.lastSent,
			Seq: g.seq, Reminders: g.reminders, Notified: slices.Sorted(maps.Keys(g.notified))}
		for _, fp := range slices.Sorted(maps.Keys(g.resolved)) {
			sg.Resolved = append(sg.Resolved, toState(g.resolved[fp]))
		}
		st.Groups = append(st.Groups, sg)
	}
	for _, in := range e.recent {
		st.Recent = append(st.Recent, toState(in))
	}
	return st
}

// save writes the state if it changed: to a temporary file, fsynced, then
// renamed over the old one. A failure is logged once until a save
// succeeds, and retried at the next flush. The caller holds evalMu.
func (e *Engine) save() error {
	if e.cfg.StatePath == "" {
		return nil
	}
	e.mu.Lock()
	if !e.dirty {
		e.mu.Unlock()
		return nil
	}
	st := e.snapshotLocked()
	e.dirty = false
	e.mu.Unlock()
	err := writeState(e.cfg.StatePath, st)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.dirty = true
		if !e.saveFailed {
			e.log.Error("saving alert state; will retry", "err", err)
		}
		e.saveFailed = true
		return err
	}
	if e.saveFailed {
		e.log.Info("alert state saved again")
		e.saveFailed = false
	}
	return nil
}

func writeState(path string, st stateFile) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding alert state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating alert state folder: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing alert state %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename is durable; a failure leaves it to the OS
		d.Close()
	}
	return nil
}

// load restores the state file. A missing file is an empty state; a file
// that does not decode is moved aside to StatePath.corrupt and the engine
// starts empty, so that a bad file cannot keep the platform down; entries
// that do not check are skipped, with a warning.
func (e *Engine) load() error {
	path := e.cfg.StatePath
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading alert state: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("reading alert state %s: %w", path, err)
	}
	r, err := decodeState(b, e.cfg.MaxAlertsPerRule)
	if err != nil {
		e.log.Error("alert state is unusable; starting without it", "file", path, "moved_to", path+".corrupt", "err", err)
		if err := os.Rename(path, path+".corrupt"); err != nil {
			return fmt.Errorf("moving unusable alert state aside: %w", err)
		}
		return nil
	}
	if r.skipped > 0 {
		e.log.Warn("skipped invalid entries of the alert state", "file", path, "entries", r.skipped)
	}
	e.active, e.groups, e.recent = r.active, r.groups, r.recent
	return nil
}

// restored is a decoded state file.
type restored struct {
	active  map[string]map[string]*instance
	groups  map[string]*group
	recent  []*instance
	skipped int
}

// decodeState parses and checks a state file.
func decodeState(b []byte, maxPerRule int) (*restored, error) {
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxStateBytes)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", st.Version, stateVersion)
	}
	r := &restored{active: map[string]map[string]*instance{}, groups: map[string]*group{}}
	for _, sa := range st.Alerts {
		in, ok := fromState(sa, StatePending, StateFiring)
		if !ok || r.active[in.rule][in.fp] != nil || len(r.active[in.rule]) >= maxPerRule {
			r.skipped++
			continue
		}
		if r.active[in.rule] == nil {
			r.active[in.rule] = map[string]*instance{}
		}
		r.active[in.rule][in.fp] = in
	}
	for _, sg := range st.Groups {
		g, bad := groupFromState(sg, maxPerRule)
		id := groupID(sg.Rule, sg.App)
		if g == nil || r.groups[id] != nil {
			r.skipped++
			continue
		}
		r.skipped += bad
		r.groups[id] = g
	}
	for _, sa := range st.Recent[max(0, len(st.Recent)-maxRecent):] {
		if in, ok := fromState(sa, StateResolved); ok {
			r.recent = append(r.recent, in)
		} else {
			r.skipped++
		}
	}
	return r, nil
}

func groupFromState(sg stateGroup, maxPerRule int) (g *group, skipped int) {
	switch {
	case !validName(sg.Rule), len(sg.App) > maxName, !printable(sg.App), sg.CreatedAt.IsZero(),
		sg.Seq < 0, sg.Reminders < 0, len(sg.Notified) > maxPerRule:
		return nil, 0
	}
	switch sg.Severity {
	case SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		return nil, 0
	}
	g = newGroup(sg.Rule, sg.App, sg.CreatedAt)
	g.severity, g.lastSent, g.seq, g.reminders = sg.Severity, sg.LastSent, sg.Seq, sg.Reminders
	for _, fp := range sg.Notified {
		g.notified[clipText(fp, 16)] = true
	}
	for _, sa := range sg.Resolved {
		in, ok := fromState(sa, StateResolved)
		if !ok || in.rule != g.rule || in.app() != g.app || len(g.resolved) >= maxPerRule {
			skipped++
			continue
		}
		g.resolved[in.fp] = in
	}
	return g, skipped
}

// fromState checks a saved alert; its state must be one of states.
func fromState(sa stateAlert, states ...string) (*instance, bool) {
	v, err := strconv.ParseFloat(sa.Value, 64)
	switch {
	case err != nil, math.IsNaN(v), !slices.Contains(states, sa.State), !validName(sa.Rule),
		sa.Labels[labelAlertname] != sa.Rule, len(sa.Labels) > maxSampleLabels+maxRuleLabels+3,
		len(sa.Annotations) > maxAnnotations+1, len(sa.Changes) > maxChanges,
		sa.ActiveAt.IsZero(), sa.State != StatePending && sa.FiredAt.IsZero(),
		sa.State == StateResolved && sa.ResolvedAt.IsZero():
		return nil, false
	}
	for k, val := range sa.Labels {
		if len(k) > maxLabelName || !labelNameRE.MatchString(k) || val == "" || labelValue(val) != val {
			return nil, false
		}
	}
	in := &instance{
		rule: sa.Rule, labels: sa.Labels, state: sa.State, value: v,
		activeAt: sa.ActiveAt, firedAt: sa.FiredAt, resolvedAt: sa.ResolvedAt,
	}
	in.fp = notify.Fingerprint(in.labels)
	if len(sa.Annotations) > 0 {
		in.annotations = make(map[string]string, len(sa.Annotations))
		for k, val := range sa.Annotations {
			if len(k) > maxLabelName || !labelNameRE.MatchString(k) {
				return nil, false
			}
			in.annotations[k] = clipBytes(strings.ToValidUTF8(val, "\uFFFD"), maxAnnotation)
		}
	}
	for _, m := range sa.Changes {
		in.changes = append(in.changes, cleanMarker(m))
	}
	return in, true
}

func validName(s string) bool { return len(s) <= maxName && nameRE.MatchString(s) }
