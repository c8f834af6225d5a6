package export

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Protocols.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Config says where and how an Exporter sends. Zero values take the
// defaults.
type Config struct {
	// Endpoint is the receiver. For http/protobuf it is a base URL such as
	// https://otel.example.com:4318, to which the OTLP/HTTP signal paths
	// /v1/traces, /v1/metrics and /v1/logs are appended. For grpc it is
	// host:port (TLS) or an http:// or https:// URL whose scheme picks
	// plain text or TLS; the port defaults to 4317. Plain text is allowed
	// only to a loopback address unless AllowInsecure is set. It may not
	// carry credentials (user:password@): put those in Headers.
	Endpoint string
	// Protocol is "http/protobuf" (the default) or "grpc".
	Protocol string
	// AllowInsecure permits plain text to a host that is not loopback.
	AllowInsecure bool
	// Headers go with every request (HTTP headers or gRPC metadata), for
	// example "authorization". Their values are secrets: they are never
	// logged and are cut out of every error and Stats.
	Headers map[string]string
	// TLS configures the client side of TLS (CA, client certificate); nil
	// uses the system roots. TLS 1.2 is the minimum.
	TLS *tls.Config
	// Dir holds the persistent queues, one subdirectory per signal.
	Dir string
	// MaxQueueBytes bounds each signal's queue on disk (default 256 MiB,
	// at least 64 KiB); when it is full the oldest batches are dropped and
	// counted. One batch may be at most a quarter of it.
	MaxQueueBytes int64
	// MaxRequestBytes bounds the uncompressed size of one export request
	// (default 1 MiB): consecutive queued batches are merged up to it. A
	// batch larger than it is sent alone.
	MaxRequestBytes int
	// Timeout bounds one export request (default 10s).
	Timeout time.Duration
	// Backoff is the first delay after a failed request (default 1s); it
	// doubles, with jitter, up to MaxBackoff (default 5m). A Retry-After
	// (HTTP 429 and 503) or gRPC RetryInfo from the receiver, up to
	// MaxBackoff, takes its place.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Compression is "gzip" (the default) or "none".
	Compression string
	// Now stamps Stats and reads HTTP-date Retry-After values (default
	// time.Now).
	Now func() time.Time
	// Logger receives warnings and failures (default: discard).
	Logger *slog.Logger
}

const (
	defaultMaxQueueBytes = 256 << 20
	minMaxQueueBytes     = 64 << 10
	defaultGRPCPort      = "4317"
)

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.Timeout, 10*time.Second)
	set(&c.Backoff, time.Second)
	set(&c.MaxBackoff, 5*time.Minute)
	c.MaxBackoff = max(c.MaxBackoff, c.Backoff)
	if c.Protocol == "" {
		c.Protocol = ProtocolHTTP
	}
	if c.Compression == "" {
		c.Compression = "gzip"
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = defaultMaxQueueBytes
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 1 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// target is a checked endpoint.
type target struct {
	base     *url.URL // http/protobuf: the base URL; grpc: scheme and host:port
	insecure bool     // plain text
	display  string   // scheme://host[:port], safe to log
}

// parseEndpoint checks c.Endpoint for c.Protocol. Its errors never quote
// the endpoint, which may hold a token in its query.
func parseEndpoint(c *Config) (target, error) {
	raw := strings.TrimSpace(c.Endpoint)
	if raw == "" {
		return target{}, errors.New("no endpoint")
	}
	if c.Protocol == ProtocolGRPC && !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, errors.New("endpoint is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return target{}, errors.New("endpoint scheme is not http or https")
	case u.Host == "" || u.Hostname() == "":
		return target{}, errors.New("endpoint has no host")
	case u.User != nil:
		return target{}, errors.New("endpoint carries credentials; put them in Headers")
	case u.Fragment != "":
		return target{}, errors.New("endpoint has a fragment")
	}
	if c.Protocol == ProtocolGRPC {
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return target{}, errors.New("grpc endpoint has a path or query")
		}
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), defaultGRPCPort)
		}
	}
	t := target{base: u, insecure: u.Scheme == "http", display: u.Scheme + "://" + u.Host}
	if t.insecure && !c.AllowInsecure && !isLoopback(u.Hostname()) {
		return target{}, fmt.Errorf("plain-text endpoint %s is not loopback; use https or set AllowInsecure", t.display)
	}
	return t, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHeaders refuses header names and values that cannot go on the
// wire. Its errors name the header, never its value.
func checkHeaders(h map[string]string) error {
	for k, v := range h {
		if k == "" || strings.IndexFunc(k, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			return fmt.Errorf("header name %q is not a token", k)
		}
		if strings.IndexFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0 {
			return fmt.Errorf("header %s has a control character in its value", k)
		}
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r < 0x7f && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

func (c *Config) validate() error {
	switch {
	case c.Protocol != ProtocolHTTP && c.Protocol != ProtocolGRPC:
		return fmt.Errorf("protocol %q is not %q or %q", c.Protocol, ProtocolHTTP, ProtocolGRPC)
	case c.Compression != "gzip" && c.Compression != "none":
		return fmt.Errorf("compression %q is not gzip or none", c.Compression)
	case c.Dir == "":
		return errors.New("no queue directory")
	case c.MaxQueueBytes < minMaxQueueBytes:
		return fmt.Errorf("MaxQueueBytes %d is below the minimum %d", c.MaxQueueBytes, minMaxQueueBytes)
	}
	return checkHeaders(c.Headers)
}

// redactor cuts header values out of text bound for logs, errors and
// Stats: a receiver may echo a token back in an error message.
type redactor []string

func newRedactor(h map[string]string) redactor {
	var r redactor
	for _, v := range h {
		v = strings.TrimSpace(v)
		if len(v) >= 4 {
			r = append(r, v)
		}
		// "Bearer <token>": the token alone is a secret too.
		for _, f := range strings.Fields(v) {
			if len(f) >= 8 && f != v {
				r = append(r, f)
			}
		}
	}
	return r
}

func (r redactor) apply(s string) string {
	for _, v := range r {
		s = strings.ReplaceAll(s, v, "[REDACTED]")
	}
	return s
}
