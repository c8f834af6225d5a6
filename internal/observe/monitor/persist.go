package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// stateVersion is the format of the StatePath file.
const stateVersion = 1

// maxStateFile bounds the StatePath file that New reads.
const maxStateFile = 256 << 20

// savedFile is the StatePath file.
type savedFile struct {
	Version  int             `json:"version"`
	Monitors []*savedMonitor `json:"monitors"`
}

// savedMonitor is one monitor's state. Name, Kind, Target and Host say
// which monitor it belongs to.
type savedMonitor struct {
	Name     string        `json:"name"`
	Kind     Kind          `json:"kind"`
	Target   string        `json:"target,omitempty"`
	Host     string        `json:"host,omitempty"`
	State    State         `json:"state"`
	Since    time.Time     `json:"since"`
	Base     State         `json:"base"`
	Fails    int           `json:"fails,omitempty"`
	OKs      int           `json:"oks,omitempty"`
	Flap     bool          `json:"flapping,omitempty"`
	Window   []State       `json:"window,omitempty"`
	Recent   []savedResult `json:"recent,omitempty"`
	Minutes  [][3]int64    `json:"minutes,omitempty"` // [start, ok, total]
	Hours    [][3]int64    `json:"hours,omitempty"`
	Token    string        `json:"token,omitempty"`
	LastPush time.Time     `json:"last_push,omitzero"`
}

type savedResult struct {
	Time    time.Time     `json:"time"`
	OK      bool          `json:"ok"`
	Latency time.Duration `json:"latency_ns,omitempty"`
	Error   string        `json:"error,omitempty"`
	Detail  string        `json:"detail,omitempty"`
}

func (sv *savedMonitor) matches(s Spec) bool {
	return sv.Kind == s.Kind && sv.Target == s.Target && sv.Host == s.Host
}

// tracker rebuilds the tracker from sv, which loadState sanitized.
func (sv *savedMonitor) tracker(fc flapConfig) *tracker {
	t := &tracker{state: sv.State, since: sv.Since, base: sv.Base, fails: sv.Fails, oks: sv.OKs, flap: sv.Flap}
	for _, r := range sv.Recent {
		t.recent = append(t.recent, Result(r))
	}
	if n := len(t.recent); n > 0 {
		t.last, t.hasLast = t.recent[n-1], true
	}
	t.window = sv.Window
	if len(t.window) > fc.Window {
		t.window = t.window[len(t.window)-fc.Window:]
	}
	t.state = t.base
	if t.flap {
		t.state = Flapping
	}
	t.minutes = toBuckets(sv.Minutes, 60, 24*60+1)
	t.hours = toBuckets(sv.Hours, 3600, 7*24+1)
	return t
}

// toBuckets keeps the well-formed buckets: aligned to span, in order, with
// counts that fit, at most the last limit.
func toBuckets(raw [][3]int64, span int64, limit int) []bucket {
	var out []bucket
	for _, b := range raw {
		if b[0]%span != 0 || b[1] < 0 || b[2] < 1 || b[1] > b[2] || b[2] > 1<<31 {
			continue
		}
		if len(out) > 0 && out[len(out)-1].Start >= b[0] {
			continue
		}
		out = append(out, bucket{Start: b[0], OK: uint32(b[1]), Total: uint32(b[2])})
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

func fromBuckets(bs []bucket) [][3]int64 {
	out := make([][3]int64, len(bs))
	for i, b := range bs {
		out[i] = [3]int64{b.Start, int64(b.OK), int64(b.Total)}
	}
	return out
}

// loadState reads the StatePath file. A missing file is no state; a file
// that does not decode is set aside (renamed to path.corrupt) with a
// warning, so that a damaged file never keeps the server from starting.
func loadState(path string, log *slog.Logger) (map[string]*savedMonitor, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading monitor state: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading monitor state: %w", err)
	}
	var out map[string]*savedMonitor
	if len(b) > maxStateFile {
		err = fmt.Errorf("larger than %d MiB", maxStateFile>>20)
	} else {
		out, err = decodeState(b)
	}
	if err != nil {
		aside := path + ".corrupt"
		log.Warn("monitor state does not decode, starting afresh", "file", path, "moved_to", aside, "err", err)
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("setting aside corrupt monitor state: %w", rerr)
		}
		return nil, nil
	}
	return out, nil
}

// decodeState parses a state file and keeps the monitors with a valid,
// unique name, their values bounded by sanitize.
func decodeState(b []byte) (map[string]*savedMonitor, error) {
	var file savedFile
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, err
	}
	if file.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", file.Version, stateVersion)
	}
	out := map[string]*savedMonitor{}
	for _, sv := range file.Monitors {
		if sv == nil || validName(sv.Name, appOf(sv.Name)) != "" || out[sv.Name] != nil {
			continue
		}
		sanitize(sv)
		out[sv.Name] = sv
	}
	return out, nil
}

// appOf returns the app of a default app monitor's name, so that
// validName accepts it.
func appOf(name string) string {
	if len(name) > len(AppPrefix) && name[:len(AppPrefix)] == AppPrefix {
		return name[len(AppPrefix):]
	}
	return ""
}

// sanitize bounds what a hand-edited or damaged file could put in sv.
func sanitize(sv *savedMonitor) {
	known := func(s State) bool { return s == Pending || s == Up || s == Down }
	if !known(sv.Base) {
		sv.Base = Pending
	}
	if sv.State != Flapping && !known(sv.State) {
		sv.State = sv.Base
	}
	sv.Flap = sv.State == Flapping
	sv.Fails = min(max(sv.Fails, 0), 1<<20)
	sv.OKs = min(max(sv.OKs, 0), 1<<20)
	sv.Window = slices.DeleteFunc(sv.Window, func(s State) bool { return !known(s) })
	if len(sv.Recent) > RecentSize {
		sv.Recent = sv.Recent[len(sv.Recent)-RecentSize:]
	}
	for i := range sv.Recent {
		sv.Recent[i].Error = clipMessage(sv.Recent[i].Error)
		sv.Recent[i].Detail = clipMessage(sv.Recent[i].Detail)
	}
	if len(sv.Token) > 256 || sv.Kind != Push {
		sv.Token = ""
	}
}

// snapshotLocked returns the state to save.
func (r *Runner) snapshotLocked() *savedFile {
	file := &savedFile{Version: stateVersion}
	for _, name := range slices.Sorted(maps.Keys(r.mons)) {
		m := r.mons[name]
		t := m.t
		sv := &savedMonitor{
			Name: name, Kind: m.spec.Kind, Target: m.spec.Target, Host: m.spec.Host,
			State: t.state, Since: t.since, Base: t.base, Fails: t.fails, OKs: t.oks, Flap: t.flap,
			Window:  slices.Clone(t.window),
			Minutes: fromBuckets(t.minutes),
			Hours:   fromBuckets(t.hours),
			Token:   m.token, LastPush: m.lastPush,
		}
		for _, res := range t.recent {
			sv.Recent = append(sv.Recent, savedResult(res))
		}
		file.Monitors = append(file.Monitors, sv)
	}
	return file
}

// save writes the current state to StatePath. A failure is logged once
// until a save works again, and returned.
func (r *Runner) save() error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	file := r.snapshotLocked()
	r.dirty = false
	r.mu.Unlock()
	err := writeState(r.cfg.StatePath, file)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.dirty = true
		if !r.saveErr {
			r.log.Warn("saving monitor state", "file", r.cfg.StatePath, "err", err)
		}
		r.saveErr = true
		return err
	}
	if r.saveErr {
		r.log.Info("saving monitor state works again", "file", r.cfg.StatePath)
	}
	r.saveErr = false
	return nil
}

// saveLoop writes the state every SaveEvery while it changed.
func (r *Runner) saveLoop(ctx context.Context) {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.SaveEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		dirty := r.dirty
		r.mu.Unlock()
		if dirty {
			r.save()
		}
	}
}

// writeState writes file to path atomically: a temporary file in the same
// directory, fsynced, renamed over path.
func writeState(path string, file *savedFile) error {
	b, err := json.Marshal(file)
	if err != nil {
		return fmt.Errorf("encoding monitor state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing monitor state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing monitor state: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing monitor state: %w", err)
	}
	return nil
}
