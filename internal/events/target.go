package events

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTPTarget delivers over HTTP to a base URL per app: the Target of
// tests and benchmarks, and of deployments whose functions live outside
// the platform.
type HTTPTarget struct {
	Client *http.Client
	URL    func(app string) string // base URL, without a trailing slash
}

// Call implements Target.
func (t HTTPTarget) Call(ctx context.Context, app string, r *http.Request, limit int) (*Response, error) {
	base := t.URL(app)
	if base == "" {
		return nil, fmt.Errorf("no address for %s", app)
	}
	u := strings.TrimSuffix(base, "/") + r.URL.RequestURI()
	req, err := http.NewRequestWithContext(ctx, r.Method, u, r.Body)
	if err != nil {
		return nil, err
	}
	req.Header = r.Header
	req.ContentLength, req.GetBody = r.ContentLength, r.GetBody
	c := t.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return ReadResponse(resp.StatusCode, resp.Header, resp.Body, limit)
}

// ReadResponse reads a body up to limit bytes into a Response.
func ReadResponse(status int, h http.Header, body io.Reader, limit int) (*Response, error) {
	data, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	out := &Response{Status: status, Header: h, Body: data}
	if len(data) > limit {
		out.Body, out.Truncated = data[:limit], true
	}
	return out, nil
}
