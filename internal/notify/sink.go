package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sink sends one event somewhere. An error means "retry later", unless it
// is wrapped with Permanent. Send must return when ctx is done and must not
// modify e, which other sinks share.
type Sink interface {
	// Name identifies the sink in logs and Stats. It must not contain a
	// secret.
	Name() string
	Send(ctx context.Context, e Event) error
}

// Permanent marks err as a failure that retrying will not fix: the event is
// dropped. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// retryAfterError is a failure for which the receiver said when to retry.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (r *retryAfterError) Error() string { return r.err.Error() }
func (r *retryAfterError) Unwrap() error { return r.err }

// Body reads are bounded: a receiver cannot make a sink read without end.
const (
	maxDrain   = 64 << 10 // read and discard at most this much of a reply
	maxSnippet = 128      // of which at most this much goes into an error
)

// httpSink POSTs one JSON document per event.
type httpSink struct {
	name   string
	id     string // spool file name: kind and a hash of the URL
	url    string
	hdr    http.Header
	client *http.Client
	body   func(Event) ([]byte, error)
	err    error // the URL is unusable; New refuses the sink
}

// Webhook returns a sink that POSTs each event as the JSON object
// {"kind","key","time","title","severity","app","fields"} to url (with
// "alert", the AlertGroup, added for an alert event), with
// Content-Type application/json and the headers hdr (for a token, say). A
// 2xx reply is a delivery; 4xx other than 408 and 429 is a permanent
// failure; anything else is retried. Its name is "webhook scheme://host".
func Webhook(url string, hdr http.Header) Sink {
	return newHTTPSink("webhook", url, hdr, webhookBody)
}

// Slack returns a sink for a Slack-compatible incoming webhook: it POSTs
// {"text": "*severity* title\nname: value\n…"} with the fields in name
// order (an alert event lists its alerts instead, each with its summary
// and what changed before it started), and treats replies as Webhook does. Its name is "slack host": the
// URL itself is a secret.
func Slack(url string) Sink {
	return newHTTPSink("slack", url, nil, slackBody)
}

func newHTTPSink(kind, raw string, hdr http.Header, body func(Event) ([]byte, error)) *httpSink {
	sum := sha256.Sum256([]byte(kind + " " + raw))
	s := &httpSink{
		name: kind + " <invalid URL>",
		id:   kind + "-" + hex.EncodeToString(sum[:8]),
		url:  raw,
		hdr:  hdr.Clone(),
		body: body,
		// No redirects: a webhook that moved answers 3xx, which is
		// retried and shows in Stats, rather than having the event posted
		// somewhere nobody configured.
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	// The parse error would quote the URL, so it is not kept.
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		s.err = fmt.Errorf("%s URL does not parse", kind)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		s.err = fmt.Errorf("%s URL is not an absolute http or https URL", kind)
	case kind == "slack":
		s.name = "slack " + u.Host
	default:
		s.name = kind + " " + u.Scheme + "://" + u.Host
	}
	return s
}

// Name returns "webhook scheme://host" or "slack host".
func (s *httpSink) Name() string { return s.name }

func (s *httpSink) spoolID() string { return s.id }

func (s *httpSink) validate() error { return s.err }

// withClient returns a copy of s that sends with c.
func (s *httpSink) withClient(c *http.Client) Sink {
	cp := *s
	cp.client = c
	return &cp
}

// Send posts e. Its errors name the sink, never the URL.
func (s *httpSink) Send(ctx context.Context, e Event) error {
	if s.err != nil {
		return Permanent(s.err)
	}
	body, err := s.body(e)
	if err != nil {
		return Permanent(fmt.Errorf("encoding event for %s: %w", s.name, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("making request for %s", s.name))
	}
	for k, v := range s.hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// A *url.Error quotes the URL; keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("posting to %s: %w", s.name, err)
	}
	defer resp.Body.Close()
	snip := make([]byte, maxSnippet)
	n, _ := io.ReadFull(resp.Body, snip)
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain-maxSnippet))
	return statusError(s.name, resp, snip[:n])
}

// statusError classifies a reply: nil for 2xx, permanent for 4xx other
// than 408 and 429, retryable otherwise.
func statusError(name string, resp *http.Response, snip []byte) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err := fmt.Errorf("posting to %s: status %d%s", name, code, quote(snip))
	switch {
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 || code < 400:
		if d := retryAfter(resp.Header.Get("Retry-After")); d > 0 {
			return &retryAfterError{err, d}
		}
		return err
	default:
		return Permanent(err)
	}
}

// quote renders the start of a reply body for an error message.
func quote(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
	if s == "" {
		return ""
	}
	return ": " + strconv.Quote(s)
}

// retryAfter parses a Retry-After header in seconds or as an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func webhookBody(e Event) ([]byte, error) { return json.Marshal(toWire(e)) }

func slackBody(e Event) ([]byte, error) {
	if e.Alert != nil {
		return slackAlertBody(e)
	}
	var b strings.Builder
	b.WriteString("*" + slackEscape(e.Severity) + "* " + slackEscape(e.Title))
	for _, k := range sortedKeys(e.Fields) {
		// One line per field, so that a value cannot pass for another field.
		b.WriteString("\n" + slackEscape(oneLine(k)) + ": " + slackEscape(oneLine(e.Fields[k])))
	}
	return json.Marshal(struct {
		Text string `json:"text"`
	}{b.String()})
}

// slackEscape escapes the three characters Slack's mrkdwn gives a meaning
// to, so that an attacker-chosen value (a path, a user agent) cannot make
// a link or mention <!channel>.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
