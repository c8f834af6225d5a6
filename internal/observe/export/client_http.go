package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// maxReply bounds how much of a reply is read.
const maxReply = 64 << 10

// httpClient speaks OTLP/HTTP with binary protobuf bodies.
type httpClient struct {
	urls    [numKinds]string
	display string
	hdr     http.Header
	gzip    bool
	now     func() time.Time
	client  *http.Client
	zpool   sync.Pool // *gzip.Writer
}

func newHTTPClient(t target, cfg *Config) *httpClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig(cfg.TLS)
	tr.ForceAttemptHTTP2 = true
	tr.MaxResponseHeaderBytes = maxReply
	c := &httpClient{
		display: t.display,
		hdr:     http.Header{},
		gzip:    cfg.Compression == "gzip",
		now:     cfg.Now,
		client: &http.Client{
			Transport: tr,
			// A redirect is answered as a refusal, so that the data and
			// the headers never go somewhere nobody configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for k := range numKinds {
		u := *t.base
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/" + k.String()
		u.RawPath = ""
		c.urls[k] = u.String()
	}
	for k, v := range cfg.Headers {
		c.hdr.Set(k, v)
	}
	c.hdr.Set("Content-Type", "application/x-protobuf")
	if c.gzip {
		c.hdr.Set("Content-Encoding", "gzip")
	}
	return c
}

// tlsConfig returns a copy of c with TLS 1.2 at least.
func tlsConfig(c *tls.Config) *tls.Config {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c = c.Clone()
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	return c
}

func (c *httpClient) close() { c.client.CloseIdleConnections() }

func (c *httpClient) compress(payload []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(payload)/4 + 64)
	zw, _ := c.zpool.Get().(*gzip.Writer)
	if zw == nil {
		zw = gzip.NewWriter(&buf)
	} else {
		zw.Reset(&buf)
	}
	zw.Write(payload) // a bytes.Buffer does not fail
	zw.Close()
	c.zpool.Put(zw)
	return buf.Bytes()
}

func (c *httpClient) export(ctx context.Context, k kind, payload []byte) (partial, error) {
	body := payload
	if c.gzip {
		body = c.compress(payload)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.urls[k], bytes.NewReader(body))
	if err != nil {
		return partial{}, newExportError(permanent, 0, "making a request to %s", c.display)
	}
	req.Header = c.hdr.Clone()
	resp, err := c.client.Do(req)
	if err != nil {
		// A *url.Error quotes the URL; keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return partial{}, newExportError(retryable, 0, "posting %s to %s: timed out", k, c.display)
		}
		return partial{}, newExportError(retryable, 0, "posting %s to %s: %v", k, c.display, err)
	}
	defer resp.Body.Close()
	reply, rerr := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxReply)) // let the connection be reused
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		if rerr != nil {
			// The receiver took the request; a cut reply loses only the
			// partial-success report.
			return partial{}, nil
		}
		return decodeHTTPReply(k, resp.Header.Get("Content-Type"), reply), nil
	}
	msg := replyMessage(resp.Header.Get("Content-Type"), reply)
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return partial{}, newExportError(retryable, retryAfter(resp.Header.Get("Retry-After"), c.now()),
			"posting %s to %s: HTTP %d%s", k, c.display, code, quoteMsg(msg))
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound ||
		code >= 300 && code < 400:
		return partial{}, newExportError(refused, 0, "posting %s to %s: HTTP %d%s", k, c.display, code, quoteMsg(msg))
	default:
		return partial{}, newExportError(permanent, 0, "posting %s to %s: HTTP %d%s", k, c.display, code, quoteMsg(msg))
	}
}

// decodeHTTPReply reads the partial success out of a 2xx reply.
func decodeHTTPReply(k kind, ctype string, reply []byte) partial {
	if len(reply) == 0 || !strings.Contains(ctype, "protobuf") {
		return partial{}
	}
	var p partial
	switch k {
	case kindTraces:
		var r coltracepb.ExportTraceServiceResponse
		if proto.Unmarshal(reply, &r) == nil {
			p = partial{r.GetPartialSuccess().GetRejectedSpans(), r.GetPartialSuccess().GetErrorMessage()}
		}
	case kindMetrics:
		var r colmetricspb.ExportMetricsServiceResponse
		if proto.Unmarshal(reply, &r) == nil {
			p = partial{r.GetPartialSuccess().GetRejectedDataPoints(), r.GetPartialSuccess().GetErrorMessage()}
		}
	case kindLogs:
		var r collogspb.ExportLogsServiceResponse
		if proto.Unmarshal(reply, &r) == nil {
			p = partial{r.GetPartialSuccess().GetRejectedLogRecords(), r.GetPartialSuccess().GetErrorMessage()}
		}
	}
	return p
}

// replyMessage extracts the message of an error reply: the google.rpc.Status
// message OTLP/HTTP specifies, or the text of a plain-text reply.
func replyMessage(ctype string, reply []byte) string {
	switch {
	case strings.Contains(ctype, "protobuf"):
		var st spb.Status
		if proto.Unmarshal(reply, &st) == nil {
			return st.GetMessage()
		}
	case strings.HasPrefix(ctype, "text/plain"), strings.Contains(ctype, "json"):
		return string(reply)
	}
	return ""
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 1<<20)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
