// Package api is the admin API: HTTP routing, request decoding, the audit
// record of every mutating call, and the one table that maps error kinds to
// status codes. It holds no domain logic: the control plane does the work.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/apitype"
	"noops/internal/control"
	"noops/internal/errkind"
	"noops/internal/spec"
	"noops/internal/stack"
	"noops/internal/store"
)

// Plane is the control plane as the API uses it.
type Plane interface {
	Apps(ctx context.Context) ([]control.AppView, error)
	App(ctx context.Context, name string) (control.AppView, error)
	Delete(ctx context.Context, app string) error
	Deploy(ctx context.Context, req control.DeployRequest, out control.Progress) (store.Release, error)
	Releases(ctx context.Context, app string) ([]store.Release, error)
	Rollback(ctx context.Context, app string, to int) (store.Release, error)
	Scale(ctx context.Context, app string, n int) error
	Ps(ctx context.Context, app string) ([]control.Sandbox, error)
	Scaling(ctx context.Context, app string) (control.Scaling, error)
	Env(ctx context.Context, app string) (store.Release, error)
	SetEnv(ctx context.Context, app string, set map[string]string, unset []string) (store.Release, error)
	URL(app string) string
	Rebase(ctx context.Context, app string, force bool, out control.Progress) (control.RebaseResult, error)
	SBOM(ctx context.Context, app string, number int, format string) ([]byte, string, error)
	Stacks(ctx context.Context) ([]stack.Info, error)
	BuildStack(ctx context.Context, name string, w io.Writer) (stack.Info, error)
	UpdateStack(ctx context.Context, name string, w io.Writer) (control.StackUpdate, error)
	Hygiene(ctx context.Context) (control.HygieneReport, error)
	DeployImage(ctx context.Context, app, ref string, cfg spec.Config, out control.Progress) (store.Release, error)
}

// Audit is where mutating calls are recorded.
type Audit interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
	ListAudit(ctx context.Context, since int64, limit int) ([]store.AuditEntry, error)
}

// Events are what the platform recorded on its own (crash loops, OOM
// kills, scaling).
type Events interface {
	ListEvents(ctx context.Context, q store.EventQuery) ([]store.Event, error)
}

// Config is what the API serves.
type Config struct {
	Plane  Plane
	Audit  Audit
	Events Events // nil serves no events
	Logs   Logs
	// Observe serves metrics history, traces, monitors and alerts; nil
	// serves none of them.
	Observe Observe
	// Capture records a sandbox of app (sandbox, or a healthy one) into w
	// as pcapng for d or maxBytes; nil serves no captures.
	Capture func(ctx context.Context, app, sandbox string, d time.Duration, maxBytes int64, w io.Writer) error
	Status  func() apitype.Status
	CARoot  func() []byte
	// Registry says how to reach the registry endpoint; nil when the
	// server has none.
	Registry func() apitype.Registry
	// Metrics serves the platform's metrics in the Prometheus text format
	// at GET /metrics; nil serves none.
	Metrics http.Handler
	Logger  *slog.Logger
	Now     func() time.Time

	// Identity manages users and devices; nil serves no identity calls.
	Identity Identity
	// Bans is the gateway's ban list; nil serves no ban calls.
	Bans Bans
	// Bus is the event bus; nil serves no event calls.
	Bus Bus
	// Remote, when set, makes this the remote API (served over mTLS by
	// the gateway): every call but the public ones needs a device
	// certificate that the platform policy allows, and profiles are not
	// served. Without it the handler is the admin socket's, whose caller
	// is root on this machine.
	Remote Remote
}

// Handler returns the API's HTTP handler.
func Handler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &server{cfg: cfg}
	mux := http.NewServeMux()
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.wrap(pattern, h))
	}
	handle("GET /v1/status", s.status)
	handle("GET /v1/ca/root", s.caRoot)
	handle("GET /v1/audit", s.audit)
	handle("GET /v1/events", s.events)
	handle("GET /v1/apps", s.apps)
	handle("GET /v1/apps/{app}", s.app)
	handle("DELETE /v1/apps/{app}", s.deleteApp)
	handle("POST /v1/apps/{app}/deploy", s.deploy)
	handle("GET /v1/apps/{app}/releases", s.releases)
	handle("POST /v1/apps/{app}/rollback", s.rollback)
	handle("POST /v1/apps/{app}/scale", s.scale)
	handle("GET /v1/apps/{app}/ps", s.ps)
	handle("GET /v1/apps/{app}/scaling", s.scaling)
	handle("GET /v1/apps/{app}/env", s.env)
	handle("POST /v1/apps/{app}/env", s.setEnv)
	handle("GET /v1/apps/{app}/logs", s.logs)
	handle("GET /v1/apps/{app}/sbom", s.sbom)
	handle("POST /v1/apps/{app}/rebase", s.rebase)
	handle("GET /v1/stacks", s.stacks)
	handle("POST /v1/gc", s.gc)
	handle("POST /v1/apps/{app}/deploy-image", s.deployImage)
	handle("GET /v1/registry", s.registry)
	handle("POST /v1/stacks/{stack}/build", s.buildStack)
	handle("POST /v1/stacks/{stack}/update", s.updateStack)
	if cfg.Identity != nil {
		s.identityRoutes(handle)
	}
	if cfg.Bans != nil {
		s.banRoutes(handle)
	}
	if cfg.Bus != nil {
		s.eventRoutes(handle)
	}
	if cfg.Observe != nil {
		s.observeRoutes(handle)
	}
	if cfg.Capture != nil {
		handle("POST /v1/apps/{app}/capture", s.capture)
	}
	if cfg.Metrics != nil {
		handle("GET /metrics", func(w http.ResponseWriter, r *http.Request) error { cfg.Metrics.ServeHTTP(w, r); return nil })
	}
	if cfg.Remote == nil {
		// Profiles of the running server, for operators (the socket is root's).
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", s.wrap("", func(w http.ResponseWriter, r *http.Request) error {
		return errkind.Errorf(errkind.NotFound, "no API endpoint %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

type server struct{ cfg Config }

// statusOf is errkind's table from error kinds to HTTP status codes.
func statusOf(k errkind.Kind) int { return errkind.Status(k) }

// wireError is what a client sees of err: the message of a classified
// error, or a generic one for an internal error (whose cause is logged).
func (s *server) wireError(r *http.Request, err error) apitype.Error {
	k := errkind.Of(err)
	e := apitype.Error{Kind: k.String(), Message: err.Error(), Hint: errkind.HintOf(err)}
	if k == errkind.Internal {
		e.Message = "the server could not complete the request"
		if errors.Is(err, context.Canceled) {
			e.Message = "the request was cancelled"
		}
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e.Hint = "the server log has the details"
	}
	return e
}

// recorder keeps the status a handler wrote, for the audit log.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (full duplex
// for deploys that stream while they upload).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// detailKey carries what the audit record should say beyond the call.
type detailKey struct{}

func setDetail(r *http.Request, d string) {
	if p, ok := r.Context().Value(detailKey{}).(*string); ok {
		*p = d
	}
}

func (s *server) wrap(pattern string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		var detail string
		r = r.WithContext(context.WithValue(r.Context(), detailKey{}, &detail))
		write := r.Method != http.MethodGet && r.Method != http.MethodHead
		r, err := s.authorize(r, pattern, write)
		denied := err != nil
		if err == nil {
			err = h(rec, r)
		}
		if err != nil {
			if rec.status == 0 {
				writeJSON(rec, statusOf(errkind.Of(err)), s.wireError(r, err))
			} else {
				s.cfg.Logger.Warn("request failed after the response started", "path", r.URL.Path, "err", err)
			}
		}
		if !write && !denied {
			return
		}
		target := ""
		if app := r.PathValue("app"); app != "" {
			target = "app:" + app
		} else if st := r.PathValue("stack"); st != "" {
			target = "stack:" + st
		}
		if err != nil && detail == "" {
			detail = err.Error()
		}
		action := pattern
		if action == "" {
			action = r.Method + " " + r.URL.Path
		}
		if denied {
			action = "deny " + action
		}
		entry := store.AuditEntry{Time: s.cfg.Now(), Actor: actor(r), Action: action, Target: target, Status: rec.status, Detail: detail}
		if _, aerr := s.cfg.Audit.AppendAudit(context.WithoutCancel(r.Context()), entry); aerr != nil {
			s.cfg.Logger.Error("writing audit record", "action", action, "err", aerr)
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads a small JSON body strictly.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errkind.Errorf(errkind.Invalid, "decoding request body: %v", err)
	}
	return nil
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errkind.Errorf(errkind.Invalid, "query parameter %s=%q is not a non-negative number", name, v)
	}
	return n, nil
}

// connKey holds the connection in the request context, for peer credentials.
type connKey struct{}

// ConnContext records the connection so that actor() can read who is on
// the other end of the admin socket. Use it as http.Server.ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// actor names the caller: the remote caller's user and device, or the
// uid behind the Unix socket.
func actor(r *http.Request) string {
	if a, ok := r.Context().Value(actorKey{}).(string); ok {
		return a
	}
	c, ok := r.Context().Value(connKey{}).(*net.UnixConn)
	if !ok {
		return "unknown"
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return "unknown"
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return "unknown"
	}
	return fmt.Sprintf("uid:%d pid:%d", cred.Uid, cred.Pid)
}
