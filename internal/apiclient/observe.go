package apiclient

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"noops/internal/apitype"
)

// Logs calls fn with app's log lines that q selects, oldest first; with
// q.Follow it keeps calling it with new lines until ctx ends.
func (c *Client) Logs(ctx context.Context, app string, q apitype.LogQuery, fn func(apitype.LogLine) error) error {
	v := url.Values{}
	switch {
	case q.Lines < 0:
		v.Set("lines", "all")
	default:
		v.Set("lines", strconv.Itoa(q.Lines))
	}
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	for k, s := range map[string]string{"grep": q.Grep, "regexp": q.Regexp, "trace": q.TraceID} {
		if s != "" {
			v.Set(k, s)
		}
	}
	v["stream"] = q.Streams
	keys := make([]string, 0, len(q.Fields))
	for k := range q.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Add("field", k+"="+q.Fields[k])
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	resp, err := c.do(ctx, http.MethodGet, appPath(app, "/logs?"+v.Encode()), nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l apitype.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("decoding a log line: %w", err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading logs: %w", err)
	}
	return nil
}

// AppMetrics returns app's requests over window from the metric history,
// with a point per step (none when step is 0).
func (c *Client) AppMetrics(ctx context.Context, app string, window, step time.Duration) (apitype.MetricsSummary, error) {
	var out apitype.MetricsSummary
	v := url.Values{"window": {window.String()}}
	if step > 0 {
		v.Set("step", step.String())
	}
	err := c.getJSON(ctx, appPath(app, "/metrics?"+v.Encode()), &out)
	return out, err
}

// Trace returns the spans of one trace.
func (c *Client) Trace(ctx context.Context, id string) (apitype.Trace, error) {
	var out apitype.Trace
	err := c.getJSON(ctx, "/v1/traces/"+url.PathEscape(id), &out)
	return out, err
}

// Traces returns recent traces that q selects.
func (c *Client) Traces(ctx context.Context, q apitype.TraceQuery) ([]apitype.TraceSummary, error) {
	v := url.Values{}
	if q.App != "" {
		v.Set("app", q.App)
	}
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	if q.MinDuration > 0 {
		v.Set("min", q.MinDuration.String())
	}
	if q.ErrorsOnly {
		v.Set("errors", "1")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out []apitype.TraceSummary
	err := c.getJSON(ctx, "/v1/traces?"+v.Encode(), &out)
	return out, err
}

// Monitors returns the uptime monitors' states (of one app when app is
// not "").
func (c *Client) Monitors(ctx context.Context, app string) ([]apitype.Monitor, error) {
	path := "/v1/monitors"
	if app != "" {
		path += "?app=" + url.QueryEscape(app)
	}
	var out []apitype.Monitor
	err := c.getJSON(ctx, path, &out)
	return out, err
}

// Push checks a push monitor in with its token; ok false reports a
// failure with msg.
func (c *Client) Push(ctx context.Context, token string, ok bool, msg string) error {
	v := url.Values{"status": {"up"}}
	if !ok {
		v.Set("status", "down")
	}
	if msg != "" {
		v.Set("msg", msg)
	}
	var out map[string]bool
	return c.getJSON(ctx, "/v1/push/"+url.PathEscape(token)+"?"+v.Encode(), &out)
}

// Alerts returns the active and recently resolved alerts.
func (c *Client) Alerts(ctx context.Context) ([]apitype.Alert, error) {
	var out []apitype.Alert
	err := c.getJSON(ctx, "/v1/alerts", &out)
	return out, err
}

func setTime(v url.Values, name string, t time.Time) {
	if !t.IsZero() {
		v.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
}

// Capture records a sandbox of app (sandbox, or a healthy one) for d and
// copies the pcapng into w, calling progress with the bytes so far.
func (c *Client) Capture(ctx context.Context, app, sandbox string, d time.Duration, maxBytes int64, w io.Writer, progress func(int64)) (int64, error) {
	v := url.Values{"duration": {d.String()}}
	if sandbox != "" {
		v.Set("sandbox", sandbox)
	}
	if maxBytes > 0 {
		v.Set("max_bytes", strconv.FormatInt(maxBytes, 10))
	}
	resp, err := c.do(ctx, http.MethodPost, appPath(app, "/capture?"+v.Encode()), nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return n, fmt.Errorf("writing the capture: %w", err)
			}
			n += int64(m)
			if progress != nil {
				progress(n)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("receiving the capture: %w", rerr)
		}
	}
}
