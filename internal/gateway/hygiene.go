package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"
	"unicode/utf8"
)

// Limits are the request hygiene rules every app request passes before
// the access layer sees it. Zero fields take the defaults below.
type Limits struct {
	MaxHeaderBytes int           // request line and headers; the server answers 431 past it
	MaxHeaders     int           // header fields
	MaxURI         int           // bytes of the request target
	MaxBody        int64         // bytes of a request body; -1 for no limit
	HeaderTimeout  time.Duration // to read the request line and headers (slowloris)
	BodyTimeout    time.Duration // the longest a request body may stall between reads
	ConnsPerClient int           // open connections per client address
}

// Default limits.
const (
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxHeaders     = 100
	DefaultMaxURI         = 8 << 10
	DefaultMaxBody        = 100 << 20
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultBodyTimeout    = 30 * time.Second
	DefaultConnsPerClient = 256
)

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxURI <= 0 {
		l.MaxURI = DefaultMaxURI
	}
	if l.MaxBody == 0 {
		l.MaxBody = DefaultMaxBody
	}
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.ConnsPerClient == 0 {
		l.ConnsPerClient = DefaultConnsPerClient
	}
	return l
}

// hygiene refuses a request that breaks a limit, with the page that says
// which, and reports the strike; it wraps the body of one it lets through
// so a stalled upload is cut off and an oversized one refused.
func (g *Gateway) hygiene(rw *respWriter, r *http.Request, id string) bool {
	l := &g.limits
	var status int
	var why string
	switch {
	case len(r.RequestURI) > l.MaxURI:
		status, why = http.StatusRequestURITooLong, fmt.Sprintf("the request target is %d bytes, over the limit of %d", len(r.RequestURI), l.MaxURI)
	case fieldCount(r.Header) > l.MaxHeaders:
		status, why = http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("the request has %d header fields, over the limit of %d", fieldCount(r.Header), l.MaxHeaders)
	case !utf8.ValidString(r.URL.Path):
		status, why = http.StatusBadRequest, "the request path is not valid UTF-8"
	case l.MaxBody > 0 && r.ContentLength > l.MaxBody:
		status, why = http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is %d bytes, over the limit of %d", r.ContentLength, l.MaxBody)
	}
	if status != 0 {
		rw.backend = "hygiene"
		g.hygieneRefused.Add(1)
		g.strike(remoteAddr(r), StrikeGarbage, why)
		r.Close = true
		g.page(rw, r, refusedPage(status, why, id))
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &bodyGuard{ReadCloser: r.Body, rc: http.NewResponseController(rw), idle: l.BodyTimeout, left: l.MaxBody, g: g, addr: remoteAddr(r)}
	}
	return true
}

// fieldCount counts header field lines (a repeated name counts each time).
func fieldCount(h http.Header) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
}

// ErrBodyTooLarge is the read error of a body past Limits.MaxBody.
var ErrBodyTooLarge = errors.New("request body over the size limit")

// bodyGuard extends the connection's read deadline by the idle timeout at
// every read (a client that stops sending is cut off, one that keeps
// sending is not) and stops a body of unknown length at the size limit.
type bodyGuard struct {
	io.ReadCloser
	rc      *http.ResponseController
	idle    time.Duration
	left    int64 // bytes still allowed; negative: no limit
	g       *Gateway
	addr    netip.Addr
	stalled bool
}

func (b *bodyGuard) Read(p []byte) (int, error) {
	if b.left == 0 {
		// At the limit: the body may end here, or be too large.
		var one [1]byte
		if n, err := b.ReadCloser.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, ErrBodyTooLarge
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	var te interface{ Timeout() bool }
	if err != nil && !b.stalled && errors.As(err, &te) && te.Timeout() {
		b.stalled = true
		b.g.strike(b.addr, StrikeSlow, "the request body stalled for "+b.idle.String())
	}
	return n, err
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
