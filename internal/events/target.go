package events

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	bu, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("the address of %s: %w", app, err)
	}
	req := r.WithContext(ctx)
	u := *r.URL
	u.Scheme, u.Host, u.Path = bu.Scheme, bu.Host, strings.TrimSuffix(bu.Path, "/")+r.URL.Path
	req.URL, req.Host = &u, bu.Host
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
