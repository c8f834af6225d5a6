// Package apiclient is the typed client of the admin API. The CLI, the
// end-to-end tests and (later) the console use it; nothing else speaks the
// API's HTTP directly.
package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"noops/internal/apitype"
	"noops/internal/errkind"
)

// Client talks to one server.
type Client struct {
	hc   *http.Client
	base string
	sock string
}

// SocketPath is where a server with data folder dir listens.
func SocketPath(dir string) string { return filepath.Join(dir, "api.sock") }

// New returns a client of the server whose data folder is dir.
func New(dir string) *Client {
	sock := SocketPath(dir)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableCompression: true,
	}
	return &Client{hc: &http.Client{Transport: tr}, base: "http://noops", sock: sock}
}

// Error is an error the server answered with.
type Error struct {
	Status int
	Body   apitype.Error
}

func (e *Error) Error() string { return e.Body.Message }

// Kind returns the server's classification of err, or errkind.Internal.
func Kind(err error) errkind.Kind {
	var e *Error
	if errors.As(err, &e) {
		return errkind.Parse(e.Body.Kind)
	}
	return errkind.Of(err)
}

// Hint returns what the server or client suggests doing about err.
func Hint(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Body.Hint
	}
	return errkind.HintOf(err)
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", method, path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.connErr(err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		e := &Error{Status: resp.StatusCode}
		if derr := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e.Body); derr != nil || e.Body.Message == "" {
			e.Body.Kind, e.Body.Message = "internal", fmt.Sprintf("server answered %s", resp.Status)
		}
		return nil, e
	}
	return resp, nil
}

// connErr explains why the server could not be reached.
func (c *Client) connErr(err error) error {
	if strings.HasPrefix(c.sock, "https://") {
		return remoteErr(c.sock, err)
	}
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return errkind.WithHint(errkind.Unavailable, fmt.Errorf("no noops server is running at %s", c.sock),
			"start one with `noops server --data DIR`, or point --data / NOOPS_DATA at its data folder")
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
		return errkind.WithHint(errkind.Permission, fmt.Errorf("not allowed to use %s", c.sock), "the admin socket is root's: run with sudo")
	}
	return errkind.E(errkind.Unavailable, fmt.Errorf("talking to the server at %s: %w", c.sock, err))
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decoding answer to %s: %w", path, err)
	}
	return nil
}

func (c *Client) sendJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.do(ctx, method, path, body, http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding answer to %s: %w", path, err)
	}
	return nil
}

func appPath(app, rest string) string { return "/v1/apps/" + url.PathEscape(app) + rest }

// Status returns the server's status.
func (c *Client) Status(ctx context.Context) (apitype.Status, error) {
	var s apitype.Status
	return s, c.getJSON(ctx, "/v1/status", &s)
}

// CARoot returns the internal CA's root certificate in PEM.
func (c *Client) CARoot(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/ca/root", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// Apps lists the apps.
func (c *Client) Apps(ctx context.Context) ([]apitype.App, error) {
	var out []apitype.App
	return out, c.getJSON(ctx, "/v1/apps", &out)
}

// App returns one app.
func (c *Client) App(ctx context.Context, app string) (apitype.App, error) {
	var out apitype.App
	return out, c.getJSON(ctx, appPath(app, ""), &out)
}

// DeleteApp stops and removes an app.
func (c *Client) DeleteApp(ctx context.Context, app string) error {
	return c.sendJSON(ctx, http.MethodDelete, appPath(app, ""), nil, nil)
}

// Releases lists an app's releases, newest first.
func (c *Client) Releases(ctx context.Context, app string) ([]apitype.Release, error) {
	var out []apitype.Release
	return out, c.getJSON(ctx, appPath(app, "/releases"), &out)
}

// Rollback makes release to (0: the previous one) live again.
func (c *Client) Rollback(ctx context.Context, app string, to int) (apitype.Release, error) {
	var out apitype.Release
	return out, c.sendJSON(ctx, http.MethodPost, appPath(app, "/rollback"), apitype.RollbackRequest{To: to}, &out)
}

// Scale sets the replica count.
func (c *Client) Scale(ctx context.Context, app string, n int) (apitype.App, error) {
	var out apitype.App
	return out, c.sendJSON(ctx, http.MethodPost, appPath(app, "/scale"), apitype.ScaleRequest{Replicas: n}, &out)
}

// Ps lists an app's sandboxes.
func (c *Client) Ps(ctx context.Context, app string) ([]apitype.Sandbox, error) {
	var out []apitype.Sandbox
	return out, c.getJSON(ctx, appPath(app, "/ps"), &out)
}

// Scaling returns the app's replica counts, autoscaler state and cold
// starts.
func (c *Client) Scaling(ctx context.Context, app string) (apitype.Scaling, error) {
	var out apitype.Scaling
	return out, c.getJSON(ctx, appPath(app, "/scaling"), &out)
}

// Metrics returns the server's metrics in the Prometheus text format, or
// with openMetrics in OpenMetrics (which carries the exemplars: trace IDs).
func (c *Client) Metrics(ctx context.Context, openMetrics bool) ([]byte, error) {
	var h http.Header
	if openMetrics {
		h = http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}}
	}
	resp, err := c.do(ctx, http.MethodGet, "/metrics", nil, h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// Env returns the app's config vars.
func (c *Client) Env(ctx context.Context, app string) (apitype.Env, error) {
	var out apitype.Env
	return out, c.getJSON(ctx, appPath(app, "/env"), &out)
}

// SetEnv changes config vars, making and rolling out a new release.
func (c *Client) SetEnv(ctx context.Context, app string, req apitype.EnvRequest) (apitype.Release, error) {
	var out apitype.Release
	return out, c.sendJSON(ctx, http.MethodPost, appPath(app, "/env"), req, &out)
}

// Audit lists audit records after seq since.
func (c *Client) Audit(ctx context.Context, since int64, limit int) ([]apitype.AuditEntry, error) {
	var out []apitype.AuditEntry
	q := url.Values{"since": {strconv.FormatInt(since, 10)}, "limit": {strconv.Itoa(limit)}}
	return out, c.getJSON(ctx, "/v1/audit?"+q.Encode(), &out)
}

// EventQuery selects platform events: of App ("" for all), after
// sequence number Since, of one of Kinds (all when empty), with From <=
// time < To (zero: unbounded), at most Limit; oldest first.
type EventQuery struct {
	App      string
	Since    int64
	Limit    int
	Kinds    []string
	From, To time.Time
}

// Events returns the platform events q selects.
func (c *Client) Events(ctx context.Context, q EventQuery) ([]apitype.Event, error) {
	var out []apitype.Event
	v := url.Values{"since": {strconv.FormatInt(q.Since, 10)}, "limit": {strconv.Itoa(q.Limit)}}
	if q.App != "" {
		v.Set("app", q.App)
	}
	if len(q.Kinds) > 0 {
		v.Set("kind", strings.Join(q.Kinds, ","))
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	return out, c.getJSON(ctx, "/v1/events?"+v.Encode(), &out)
}

// Deploy uploads a packed app (gzipped tar) and calls onEvent for each
// stage, log line and the result as the server streams them. It returns
// the result event, or the server's error.
func (c *Client) Deploy(ctx context.Context, app string, archive io.Reader, size int64, sha256hex string, onEvent func(apitype.DeployEvent)) (apitype.DeployEvent, error) {
	hdr := http.Header{"Content-Type": {"application/gzip"}, "X-Noops-Sha256": {sha256hex}}
	return c.stream(ctx, appPath(app, "/deploy"), archive, size, hdr, "noops releases "+app, onEvent)
}

// Rebase puts the app's live release on its stack's current run image.
func (c *Client) Rebase(ctx context.Context, app string, force bool, onEvent func(apitype.DeployEvent)) (apitype.DeployEvent, error) {
	return c.streamJSON(ctx, appPath(app, "/rebase"), apitype.RebaseRequest{Force: force}, "noops releases "+app, onEvent)
}

// GC cleans up the data folder now: old releases, unused images, build
// caches over their cap.
func (c *Client) GC(ctx context.Context) (apitype.GCReport, error) {
	var out apitype.GCReport
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/gc", nil, &out)
}

// DeployImage deploys an image from the noops registry as app.
func (c *Client) DeployImage(ctx context.Context, app, image string, port int, access string, onEvent func(apitype.DeployEvent)) (apitype.DeployEvent, error) {
	return c.streamJSON(ctx, appPath(app, "/deploy-image"), apitype.ImageDeployRequest{Image: image, Port: port, Access: access}, "noops releases "+app, onEvent)
}

// Registry returns how to reach the registry endpoint, token included.
func (c *Client) Registry(ctx context.Context) (apitype.Registry, error) {
	var out apitype.Registry
	return out, c.getJSON(ctx, "/v1/registry", &out)
}

// Stacks lists the stacks.
func (c *Client) Stacks(ctx context.Context) ([]apitype.Stack, error) {
	var out []apitype.Stack
	return out, c.getJSON(ctx, "/v1/stacks", &out)
}

// BuildStack builds a stack's images, streaming progress.
func (c *Client) BuildStack(ctx context.Context, name string, onEvent func(apitype.DeployEvent)) (apitype.DeployEvent, error) {
	return c.streamJSON(ctx, "/v1/stacks/"+url.PathEscape(name)+"/build", struct{}{}, "noops stack list", onEvent)
}

// UpdateStack updates a stack to the archive's newest packages.
func (c *Client) UpdateStack(ctx context.Context, name string, onEvent func(apitype.DeployEvent)) (apitype.DeployEvent, error) {
	return c.streamJSON(ctx, "/v1/stacks/"+url.PathEscape(name)+"/update", struct{}{}, "noops stack list", onEvent)
}

// SBOM returns an app release's SBOM (release 0: the live one) in format
// (cyclonedx, spdx or inventory).
func (c *Client) SBOM(ctx context.Context, app string, release int, format string) ([]byte, error) {
	q := url.Values{"format": {format}}
	if release > 0 {
		q.Set("release", strconv.Itoa(release))
	}
	resp, err := c.do(ctx, http.MethodGet, appPath(app, "/sbom?"+q.Encode()), nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, errkind.E(errkind.Unavailable, fmt.Errorf("reading the SBOM: %w", err))
	}
	return b, nil
}

func (c *Client) streamJSON(ctx context.Context, path string, in any, where string, onEvent func(apitype.DeployEvent)) (apitype.DeployEvent, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return apitype.DeployEvent{}, fmt.Errorf("encoding request: %w", err)
	}
	return c.stream(ctx, path, bytes.NewReader(b), int64(len(b)), http.Header{"Content-Type": {"application/json"}}, where, onEvent)
}

// stream POSTs body and reads the NDJSON events the server answers with
// until the result or an error. where names the command that shows what
// happened if the stream ends early.
func (c *Client) stream(ctx context.Context, path string, body io.Reader, size int64, hdr http.Header, where string, onEvent func(apitype.DeployEvent)) (apitype.DeployEvent, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, body)
	if err != nil {
		return apitype.DeployEvent{}, fmt.Errorf("building request %s: %w", path, err)
	}
	req.Header = hdr
	req.ContentLength = size
	resp, err := c.hc.Do(req)
	if err != nil {
		return apitype.DeployEvent{}, c.connErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if derr := json.NewDecoder(resp.Body).Decode(&e.Body); derr != nil || e.Body.Message == "" {
			e.Body.Kind, e.Body.Message = "internal", "server answered "+resp.Status
		}
		return apitype.DeployEvent{}, e
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev apitype.DeployEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return ev, fmt.Errorf("decoding the server's stream: %w", err)
		}
		switch ev.Type {
		case "result":
			return ev, nil
		case "error":
			if ev.Error == nil {
				return ev, errkind.Errorf(errkind.Internal, "the server reported an error without saying what")
			}
			return ev, &Error{Body: *ev.Error}
		}
		if onEvent != nil {
			onEvent(ev)
		}
	}
	if err := sc.Err(); err != nil {
		return apitype.DeployEvent{}, errkind.E(errkind.Unavailable, fmt.Errorf("reading the server's stream: %w", err))
	}
	return apitype.DeployEvent{}, errkind.Errorf(errkind.Unavailable, "the server closed the stream without a result; see `%s`", where)
}
