package api

import (
	"fmt"
	"net/http"
	"strings"

	"noops/internal/apitype"
	"noops/internal/control"
	"noops/internal/errkind"
	"noops/internal/spec"
	"noops/internal/stack"
)

func stackType(i stack.Info) apitype.Stack {
	img := func(r stack.ImageRef) apitype.StackImage {
		out := apitype.StackImage{Lock: r.Lock, Packages: r.Packages, Size: r.Size, Created: r.Created}
		if r.Digest.Hex != "" {
			out.Digest = r.Digest.String()
		}
		return out
	}
	return apitype.Stack{Name: i.Name, Run: img(i.Run), Build: img(i.Build)}
}

func changes(cs []stack.Change) []apitype.PackageChange {
	out := make([]apitype.PackageChange, len(cs))
	for i, c := range cs {
		out[i] = apitype.PackageChange{Package: c.Package, From: c.From, To: c.To}
	}
	return out
}

func (s *server) stacks(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cfg.Plane.Stacks(r.Context())
	if err != nil {
		return err
	}
	out := make([]apitype.Stack, len(list))
	for i, st := range list {
		out[i] = stackType(st)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// logWriter turns written bytes into "log" events, a line each.
type logWriter struct {
	st   *streamer
	part string
}

func (l *logWriter) Write(b []byte) (int, error) {
	lines := strings.Split(l.part+string(b), "\n")
	l.part = lines[len(lines)-1]
	for _, line := range lines[:len(lines)-1] {
		l.st.Log(strings.TrimRight(line, "\r"))
	}
	return len(b), nil
}

func (l *logWriter) flush() {
	if l.part != "" {
		l.st.Log(l.part)
		l.part = ""
	}
}

// streamed runs a long operation whose progress streams as NDJSON and
// whose outcome is the last event.
func (s *server) streamed(w http.ResponseWriter, r *http.Request, run func(st *streamer) (apitype.DeployEvent, error)) error {
	st := newStreamer(w)
	ev, err := run(st)
	if err != nil {
		e := s.wireError(r, err)
		st.send(apitype.DeployEvent{Type: "error", Error: &e})
		setDetail(r, err.Error())
		if rec, ok := w.(*recorder); ok {
			rec.status = statusOf(errkind.Of(err)) // the audit record keeps the outcome
		}
		return nil
	}
	ev.Type = "result"
	st.send(ev)
	return nil
}

func (s *server) buildStack(w http.ResponseWriter, r *http.Request) error {
	return s.streamed(w, r, func(st *streamer) (apitype.DeployEvent, error) {
		lw := &logWriter{st: st}
		info, err := s.cfg.Plane.BuildStack(r.Context(), r.PathValue("stack"), lw)
		lw.flush()
		if err != nil {
			return apitype.DeployEvent{}, err
		}
		out := stackType(info)
		setDetail(r, "run "+out.Run.Lock)
		return apitype.DeployEvent{Stack: &out}, nil
	})
}

func (s *server) updateStack(w http.ResponseWriter, r *http.Request) error {
	return s.streamed(w, r, func(st *streamer) (apitype.DeployEvent, error) {
		lw := &logWriter{st: st}
		u, err := s.cfg.Plane.UpdateStack(r.Context(), r.PathValue("stack"), lw)
		lw.flush()
		if err != nil {
			return apitype.DeployEvent{}, err
		}
		out := apitype.StackUpdate{Stack: stackType(u.Info), Run: changes(u.Run), Build: changes(u.Build), Affected: u.Affected}
		if out.Affected == nil {
			out.Affected = []string{}
		}
		setDetail(r, "run "+out.Stack.Run.Lock)
		return apitype.DeployEvent{StackUpdate: &out}, nil
	})
}

func (s *server) rebase(w http.ResponseWriter, r *http.Request) error {
	var req apitype.RebaseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	app := r.PathValue("app")
	return s.streamed(w, r, func(st *streamer) (apitype.DeployEvent, error) {
		res, err := s.cfg.Plane.Rebase(r.Context(), app, req.Force, st)
		if err != nil {
			return apitype.DeployEvent{}, err
		}
		out := apitype.Rebase{App: app, Unchanged: res.Unchanged, Changes: []apitype.PackageChange{}}
		rel := releaseType(res.Release)
		out.Release = &rel
		for _, c := range res.Changed {
			out.Changes = append(out.Changes, apitype.PackageChange{Package: c.Name, From: c.From, To: c.To})
		}
		for _, c := range res.Added {
			out.Changes = append(out.Changes, apitype.PackageChange{Package: c.Name, To: c.Version})
		}
		for _, c := range res.Removed {
			out.Changes = append(out.Changes, apitype.PackageChange{Package: c.Name, From: c.Version})
		}
		setDetail(r, "release "+itoa(rel.Number))
		return apitype.DeployEvent{Rebase: &out, URL: s.cfg.Plane.URL(app)}, nil
	})
}

func (s *server) sbom(w http.ResponseWriter, r *http.Request) error {
	n, err := intParam(r, "release", 0)
	if err != nil {
		return err
	}
	b, ctype, err := s.cfg.Plane.SBOM(r.Context(), r.PathValue("app"), n, r.URL.Query().Get("format"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctype)
	_, err = w.Write(b)
	return err
}

var _ control.Progress = (*streamer)(nil)

func (s *server) gc(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.cfg.Plane.Hygiene(r.Context())
	if err != nil {
		return err
	}
	out := apitype.GCReport{Releases: rep.Releases, Skipped: rep.Skipped, Images: len(rep.Images.Images), Blobs: rep.Images.Blobs,
		Layers: rep.Images.Layers, Freed: rep.Images.Freed(), CachesRemoved: rep.Caches.Removed, CacheFreed: rep.Caches.Freed}
	if out.CachesRemoved == nil {
		out.CachesRemoved = []string{}
	}
	setDetail(r, fmt.Sprintf("%d blobs, %d bytes", out.Blobs, out.Freed+out.CacheFreed))
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) deployImage(w http.ResponseWriter, r *http.Request) error {
	var req apitype.ImageDeployRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	app := r.PathValue("app")
	return s.streamed(w, r, func(st *streamer) (apitype.DeployEvent, error) {
		rel, err := s.cfg.Plane.DeployImage(r.Context(), app, req.Image, spec.Config{Run: spec.Run{Port: req.Port}, Access: spec.Access{Policy: req.Access}}, st)
		if rel.Number > 0 {
			setDetail(r, "release "+itoa(rel.Number)+" from "+req.Image)
		}
		if err != nil {
			return apitype.DeployEvent{}, err
		}
		out := releaseType(rel)
		return apitype.DeployEvent{Release: &out, URL: s.cfg.Plane.URL(app)}, nil
	})
}

// registry tells root (the admin socket's only user) how to log in to the
// registry endpoint.
func (s *server) registry(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Registry == nil {
		return errkind.Errorf(errkind.NotFound, "this server has no registry endpoint")
	}
	writeJSON(w, http.StatusOK, s.cfg.Registry())
	return nil
}
