package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"noops/internal/apitype"
	"noops/internal/control"
	"noops/internal/errkind"
	"noops/internal/store"
)

func (s *server) status(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.cfg.Status())
	return nil
}

func (s *server) caRoot(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(s.cfg.CARoot())
	return err
}

// page reads the since and limit parameters of an append-only list.
func page(r *http.Request) (since int64, limit int, err error) {
	n, err := intParam(r, "since", 0)
	if err != nil {
		return 0, 0, err
	}
	limit, err = intParam(r, "limit", 100)
	return int64(n), limit, err
}

func (s *server) audit(w http.ResponseWriter, r *http.Request) error {
	since, limit, err := page(r)
	if err != nil {
		return err
	}
	rows, err := s.cfg.Audit.ListAudit(r.Context(), since, limit)
	if err != nil {
		return err
	}
	out := make([]apitype.AuditEntry, len(rows))
	for i, e := range rows {
		out[i] = apitype.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Status: e.Status, Detail: e.Detail, Hash: e.Hash}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) events(w http.ResponseWriter, r *http.Request) error {
	since, limit, err := page(r)
	if err != nil {
		return err
	}
	out := []apitype.Event{}
	if s.cfg.Events != nil {
		q := store.EventQuery{App: r.URL.Query().Get("app"), Since: since, Limit: limit}
		if k := r.URL.Query().Get("kind"); k != "" {
			q.Kinds = strings.Split(k, ",")
		}
		for name, t := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
			if v := r.URL.Query().Get(name); v != "" {
				if *t, err = time.Parse(time.RFC3339Nano, v); err != nil {
					return errkind.Errorf(errkind.Invalid, "%s=%q: give a time as RFC 3339, e.g. 2026-12-06T10:00:00Z", name, v)
				}
			}
		}
		rows, err := s.cfg.Events.ListEvents(r.Context(), q)
		if err != nil {
			return err
		}
		for _, e := range rows {
			out = append(out, apitype.Event{Seq: e.Seq, Time: e.Time, App: e.App, Kind: e.Kind, Message: e.Message})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func appType(a control.AppView) apitype.App {
	return apitype.App{Name: a.Name, Created: a.Created, Release: a.Release, Replicas: a.Replicas, URL: a.URL, Healthy: a.Healthy}
}

func (s *server) apps(w http.ResponseWriter, r *http.Request) error {
	apps, err := s.cfg.Plane.Apps(r.Context())
	if err != nil {
		return err
	}
	out := make([]apitype.App, len(apps))
	for i, a := range apps {
		out[i] = appType(a)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) app(w http.ResponseWriter, r *http.Request) error {
	a, err := s.cfg.Plane.App(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, appType(a))
	return nil
}

func (s *server) deleteApp(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Plane.Delete(r.Context(), r.PathValue("app")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func releaseType(rel store.Release) apitype.Release {
	return apitype.Release{App: rel.App, Number: rel.Number, Image: rel.Image, SourceDigest: rel.SourceDigest,
		Buildpack: rel.Buildpack, Config: rel.Config, EnvKeys: keys(rel.Env), Created: rel.Created,
		Status: string(rel.Status), Reason: rel.Reason}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *server) releases(w http.ResponseWriter, r *http.Request) error {
	rels, err := s.cfg.Plane.Releases(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	out := make([]apitype.Release, len(rels))
	for i, rel := range rels {
		out[i] = releaseType(rel)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) rollback(w http.ResponseWriter, r *http.Request) error {
	var req apitype.RollbackRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	rel, err := s.cfg.Plane.Rollback(r.Context(), r.PathValue("app"), req.To)
	if err != nil {
		return err
	}
	setDetail(r, rel.Reason)
	writeJSON(w, http.StatusOK, releaseType(rel))
	return nil
}

func (s *server) scale(w http.ResponseWriter, r *http.Request) error {
	var req apitype.ScaleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	app := r.PathValue("app")
	setDetail(r, "replicas="+itoa(req.Replicas))
	if err := s.cfg.Plane.Scale(r.Context(), app, req.Replicas); err != nil {
		return err
	}
	a, err := s.cfg.Plane.App(r.Context(), app)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, appType(a))
	return nil
}

func (s *server) ps(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.cfg.Plane.Ps(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	out := make([]apitype.Sandbox, len(rows))
	for i, sb := range rows {
		out[i] = apitype.Sandbox{ID: sb.ID, App: sb.App, Release: sb.Release, Process: sb.Process, State: sb.State, Addr: sb.Addr, Pid: sb.Pid,
			Restarts: sb.Restarts, LastExit: sb.LastExit, Created: sb.Created, Updated: sb.Updated}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) env(w http.ResponseWriter, r *http.Request) error {
	rel, err := s.cfg.Plane.Env(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	env := rel.Env
	if env == nil {
		env = map[string]string{}
	}
	writeJSON(w, http.StatusOK, apitype.Env{App: rel.App, Release: rel.Number, Env: env})
	return nil
}

func (s *server) setEnv(w http.ResponseWriter, r *http.Request) error {
	var req apitype.EnvRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	// The audit record names the keys, never the values.
	setDetail(r, "set "+strings.Join(keys(req.Set), ",")+" unset "+strings.Join(req.Unset, ","))
	rel, err := s.cfg.Plane.SetEnv(r.Context(), r.PathValue("app"), req.Set, req.Unset)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, releaseType(rel))
	return nil
}

// streamer writes NDJSON lines and flushes each, safe for concurrent use.
type streamer struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	enc *json.Encoder
}

func newStreamer(w http.ResponseWriter) *streamer {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return &streamer{w: w, enc: json.NewEncoder(w)}
}

func (s *streamer) send(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.enc.Encode(v)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (st *streamer) Stage(name string) { st.send(apitype.DeployEvent{Type: "stage", Stage: name}) }
func (st *streamer) Log(line string)   { st.send(apitype.DeployEvent{Type: "log", Line: line}) }

func (s *server) deploy(w http.ResponseWriter, r *http.Request) error {
	// A deploy refused before its upload is read (an unknown content
	// type, a deploy already in progress) must still consume or close the
	// body, or net/http panics on the connection (golang/go#68560).
	defer r.Body.Close()
	app := r.PathValue("app")
	if ct := r.Header.Get("Content-Type"); ct != "application/gzip" {
		return errkind.Errorf(errkind.Invalid, "a deploy takes an application/gzip body (source.Pack), not %q", ct)
	}
	// The response streams while the upload is still being read.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		return err
	}
	return s.streamed(w, r, func(st *streamer) (apitype.DeployEvent, error) {
		rel, err := s.cfg.Plane.Deploy(r.Context(), control.DeployRequest{App: app, Archive: r.Body, SHA256: r.Header.Get("X-Noops-Sha256")}, st)
		if rel.Number > 0 {
			setDetail(r, "release "+itoa(rel.Number))
		}
		if err != nil {
			return apitype.DeployEvent{}, err
		}
		out := releaseType(rel)
		return apitype.DeployEvent{Release: &out, URL: s.cfg.Plane.URL(app)}, nil
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func (s *server) scaling(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.cfg.Plane.Scaling(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out := apitype.Scaling{Desired: sc.Desired, Ready: sc.Ready, Autoscaled: sc.Autoscaled, Stable: sc.Stable, Panic: sc.Panic, Panicking: sc.Panicking,
		ColdStarts: apitype.ColdStarts{Count: sc.ColdStarts.Count, P50Ms: ms(sc.ColdStarts.P50), P99Ms: ms(sc.ColdStarts.P99), MaxMs: ms(sc.ColdStarts.Max)}}
	if sc.Autoscaled {
		c := sc.Scale
		out.Scale = &apitype.ScaleSection{Min: c.Min, Max: c.Max, Concurrency: c.Concurrency, Idle: c.Idle.String(), Retain: c.Retain.String(), Window: c.Window.String()}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
