package monitor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// MaxBody is how much of a response body an http check reads; the
// conditions see only this much.
const MaxBody = 1 << 20

// maxHeaderBytes bounds the response headers of an http check.
const maxHeaderBytes = 64 << 10

// prober runs the checks of one http, tcp or tls monitor.
type prober struct {
	spec   Spec
	c      *compiled
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	roots  *x509.CertPool
	now    func() time.Time
	client *http.Client // http only
}

func newProber(s Spec, c *compiled, cfg *Config) *prober {
	p := &prober{spec: s, c: c, dial: cfg.Dial, roots: cfg.RootCAs, now: cfg.Now}
	if p.dial == nil {
		d := &net.Dialer{Resolver: cfg.Resolver, KeepAlive: -1}
		p.dial = d.DialContext
	}
	if s.Kind == HTTP {
		tr := &http.Transport{
			Proxy:                  nil, // a monitor reaches its target directly
			DialContext:            p.dial,
			DisableKeepAlives:      true, // each check opens a fresh connection
			ForceAttemptHTTP2:      true,
			MaxResponseHeaderBytes: maxHeaderBytes,
			TLSClientConfig: &tls.Config{
				ServerName:         s.Host,
				InsecureSkipVerify: s.Insecure,
				RootCAs:            cfg.RootCAs,
				Time:               cfg.Now,
			},
		}
		p.client = &http.Client{
			Transport: tr,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if !s.FollowRedirects {
					return http.ErrUseLastResponse
				}
				if len(via) >= 10 {
					return errors.New("stopped after 10 redirects")
				}
				return nil
			},
		}
	}
	return p
}

// close releases the prober's idle resources.
func (p *prober) close() {
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
}

// check runs one check bounded by the spec's Timeout. The caller drops the
// result when ctx itself ended (the monitor stopped).
func (p *prober) check(ctx context.Context) Result {
	ctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	res := Result{Time: p.now()}
	switch p.spec.Kind {
	case HTTP:
		p.checkHTTP(ctx, &res)
	case TCP:
		p.checkTCP(ctx, &res)
	case TLS:
		p.checkTLS(ctx, &res)
	}
	if res.OK && p.spec.MaxLatency > 0 && res.Latency > p.spec.MaxLatency {
		res.OK = false
		res.Error = fmt.Sprintf("latency %s above %s", round(res.Latency), p.spec.MaxLatency)
	}
	return res
}

func (p *prober) checkHTTP(ctx context.Context, res *Result) {
	req, err := http.NewRequestWithContext(ctx, p.spec.Method, p.spec.Target, nil)
	if err != nil {
		res.Error = "building the request: " + describe(err, p.spec.Timeout)
		return
	}
	if p.spec.Host != "" {
		req.Host = p.spec.Host
	}
	req.Header.Set("User-Agent", "noops-monitor/1")
	for k, v := range p.spec.Headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		res.Latency = time.Since(start)
		res.Error = describe(err, p.spec.Timeout)
		return
	}
	defer resp.Body.Close()
	var body []byte
	needBody := p.spec.BodyContains != "" || p.c.bodyRe != nil
	var n int64
	if needBody {
		body, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		n = int64(len(body))
	} else {
		n, err = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody))
	}
	res.Latency = time.Since(start)
	res.Detail = fmt.Sprintf("status %d in %s", resp.StatusCode, round(res.Latency))
	if n >= MaxBody {
		res.Detail += ", body cut at 1 MiB"
	}
	if err != nil {
		res.Error = "reading the body: " + describe(err, p.spec.Timeout)
		return
	}
	switch {
	case !acceptStatus(p.c.statuses, resp.StatusCode):
		res.Error = fmt.Sprintf("status %d, want %s", resp.StatusCode, strings.Join(p.spec.Status, " or "))
	case p.spec.BodyContains != "" && !bytes.Contains(body, []byte(p.spec.BodyContains)):
		res.Error = fmt.Sprintf("body does not contain %q", clip(p.spec.BodyContains, 64))
	case p.c.bodyRe != nil && !p.c.bodyRe.Match(body):
		res.Error = fmt.Sprintf("body does not match %q", clip(p.spec.BodyRegexp, 64))
	default:
		res.OK = true
	}
}

func (p *prober) checkTCP(ctx context.Context, res *Result) {
	start := time.Now()
	conn, err := p.dial(ctx, "tcp", p.spec.Target)
	res.Latency = time.Since(start)
	if err != nil {
		res.Error = describe(err, p.spec.Timeout)
		return
	}
	conn.Close()
	res.OK = true
	res.Detail = "connected in " + round(res.Latency).String()
}

func (p *prober) checkTLS(ctx context.Context, res *Result) {
	host, _, _ := net.SplitHostPort(p.spec.Target)
	name := host
	if p.spec.Host != "" {
		name = p.spec.Host
	}
	start := time.Now()
	conn, err := p.dial(ctx, "tcp", p.spec.Target)
	if err != nil {
		res.Latency = time.Since(start)
		res.Error = describe(err, p.spec.Timeout)
		return
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	sni := name
	if net.ParseIP(sni) != nil {
		sni = "" // SNI carries names only
	}
	// Verification is done below, so that an expired or untrusted
	// certificate is still described.
	tc := tls.Client(conn, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	err = tc.HandshakeContext(ctx)
	res.Latency = time.Since(start)
	if err != nil {
		res.Error = "TLS handshake: " + describe(err, p.spec.Timeout)
		return
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		res.Error = "TLS handshake: the server sent no certificate"
		return
	}
	leaf, now := certs[0], p.now()
	left := leaf.NotAfter.Sub(now)
	days := int(left.Hours() / 24)
	expiry := leaf.NotAfter.UTC().Format(time.DateOnly)
	if left < 0 {
		res.Detail = fmt.Sprintf("certificate for %s expired on %s", certName(leaf), expiry)
		res.Error = fmt.Sprintf("certificate expired %d days ago (%s)", int(-left.Hours()/24), expiry)
		return
	}
	res.Detail = fmt.Sprintf("certificate for %s expires in %d days (%s)", certName(leaf), days, expiry)
	if !p.spec.Insecure {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: p.roots, Intermediates: inter, CurrentTime: now})
		if err != nil {
			res.Error = "certificate does not verify: " + err.Error()
			return
		}
	}
	if days < p.spec.CertMinDays {
		res.Error = fmt.Sprintf("certificate expires in %d days (%s), want at least %d", days, expiry, p.spec.CertMinDays)
		return
	}
	res.OK = true
}

// certName names a certificate by its first DNS name or its subject.
func certName(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return clip(c.DNSNames[0], 128)
	}
	if len(c.IPAddresses) > 0 {
		return c.IPAddresses[0].String()
	}
	return clip(c.Subject.CommonName, 128)
}

// describe turns a check's error into a message without the target URL
// (which may hold a secret): a name that does not resolve keeps the
// resolver's message, a deadline says how long was waited.
func describe(err error, timeout time.Duration) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Sprintf("timed out after %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Sprintf("timed out after %s", timeout)
		}
		err = ue.Err
	}
	return err.Error()
}

// round shortens a latency for a message.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
