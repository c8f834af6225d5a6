package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// maxInterimResponses bounds the 1xx responses read before the final one.
const maxInterimResponses = 10

// aLongTimeAgo is a deadline in the past: it wakes blocked reads and writes.
var aLongTimeAgo = time.Unix(1, 0)

// staleError is a failure on a reused connection before the backend sent
// a byte of response: the backend most likely closed the connection while
// it sat idle, and never saw the request.
type staleError struct{ err error }

func (e *staleError) Error() string { return e.err.Error() }
func (e *staleError) Unwrap() error { return e.err }

// fastPath reports whether forward can serve r: it has no body to stream
// and asks for no protocol upgrade.
func fastPath(r *http.Request) bool {
	return r.ContentLength == 0 && r.Method != http.MethodConnect && len(r.Header["Upgrade"]) == 0
}

// forward sends a bodiless request to b over a pooled connection and copies
// the response back. It returns an error only when nothing has been written
// to w, so that the caller may retry elsewhere or answer with a page.
// A request that an idle connection's close swallowed is sent again on a
// new connection when its method is idempotent.
func (g *Gateway) forward(w *respWriter, r *http.Request, b *backend) error {
	ctx := r.Context()
	for try := 0; ; try++ {
		c, err := b.pool.get(ctx, try > 0)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
		res, err := exchange(ctx, w, c, r)
		if err != nil {
			stop()
			c.nc.Close()
			var stale *staleError
			if try == 0 && c.used && errors.As(err, &stale) && ctx.Err() == nil && idempotent(r) {
				continue
			}
			return err
		}
		reuse := g.copyResponse(w, r, res, c)
		// Bytes left over after the response mean a confused app: drop it.
		if stop() && reuse && c.br.Buffered() == 0 {
			b.pool.put(c)
		} else {
			c.nc.Close()
		}
		return nil
	}
}

// exchange writes the request and reads the response head, waiting at
// most responseHeaderTimeout. 103 Early Hints go to the client on the way.
func exchange(ctx context.Context, w http.ResponseWriter, c *upConn, r *http.Request) (*http.Response, error) {
	if strings.ContainsAny(r.Host, "\r\n ") { // net/http rejects these already
		return nil, errors.New("invalid Host header")
	}
	if err := c.nc.SetReadDeadline(time.Now().Add(responseHeaderTimeout)); err != nil {
		return nil, err
	}
	if err := writeRequest(c.bw, r); err != nil {
		return nil, &staleError{err}
	}
	if _, err := c.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || isConnReset(err) {
			return nil, &staleError{err}
		}
		return nil, err
	}
	for interim := 0; ; interim++ {
		if interim > maxInterimResponses {
			return nil, errors.New("backend sent too many 1xx responses")
		}
		res, err := http.ReadResponse(c.br, r)
		if err != nil {
			return nil, err
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("backend switched protocols unasked")
		case res.StatusCode == http.StatusEarlyHints:
			h := w.Header()
			for k, vv := range res.Header {
				h[k] = vv
			}
			w.WriteHeader(http.StatusEarlyHints)
			clear(h)
			continue
		case res.StatusCode < 200:
			continue // 100 Continue, 102 Processing: nothing for the client
		}
		// Clear the deadline, then look at ctx: a cancellation that came
		// before the clear would otherwise be lost.
		if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return res, nil
	}
}

// copyResponse writes the response head and streams the body to the
// client. It reports whether the connection can serve another request.
// If the backend fails in the middle of the body, the client's response is
// aborted (http.ErrAbortHandler) so that it does not look complete.
func (g *Gateway) copyResponse(w *respWriter, r *http.Request, res *http.Response, c *upConn) bool {
	removeHopByHop(res.Header)
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = vv
	}
	h["X-Request-Id"] = r.Header["X-Request-Id"]
	if _, ok := h["Strict-Transport-Security"]; !ok {
		h["Strict-Transport-Security"] = hstsHeader[:1:1]
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(res.StatusCode)

	// A stream (no length, or server-sent events) is flushed whenever the
	// backend has nothing more buffered, so that it reaches the client
	// without waiting and without a write per chunk.
	stream := res.ContentLength == -1 || isEventStream(res.Header["Content-Type"])
	flusher, _ := w.ResponseWriter.(http.Flusher)
	buf := g.bufs.Get()
	defer g.bufs.Put(buf)
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				c.nc.Close()
				return false // the client went away
			}
			if stream && flusher != nil && c.br.Buffered() == 0 {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			c.nc.Close()
			if r.Context().Err() != nil {
				return false
			}
			g.log.Warn("app broke off its response", "host", r.Host, "backend", w.backend, "err", rerr, "request_id", h.Get("X-Request-Id"))
			panic(http.ErrAbortHandler)
		}
	}
	if len(res.Trailer) > 0 && flusher != nil {
		flusher.Flush() // chunked, so that the trailers can follow
	}
	for k, vv := range res.Trailer {
		if len(res.Trailer) == announced {
			h[k] = vv
		} else {
			h[http.TrailerPrefix+k] = vv
		}
	}
	return !res.Close
}

// writeRequest writes r as an HTTP/1.1 request without a body, dropping
// hop-by-hop headers and whatever forwarding headers the client sent, and
// adding the gateway's own.
func writeRequest(bw *bufio.Writer, r *http.Request) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if r.URL.Opaque != "" {
		bw.WriteString(r.URL.Opaque)
	} else if p := r.URL.EscapedPath(); p != "" {
		bw.WriteString(p)
	} else {
		bw.WriteByte('/')
	}
	if q := r.URL.RawQuery; q != "" {
		bw.WriteByte('?')
		bw.WriteString(cleanQuery(q))
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	connTokens := r.Header["Connection"]
	for k, vv := range r.Header {
		if skipRequestHeader[k] || len(connTokens) > 0 && listedIn(connTokens, k) {
			continue
		}
		for _, v := range vv {
			writeHeader(bw, k, v)
		}
	}
	for _, te := range r.Header["Te"] {
		if strings.Contains(strings.ToLower(te), "trailers") {
			bw.WriteString("Te: trailers\r\n")
			break
		}
	}
	writeHeader(bw, "X-Forwarded-For", clientIP(r.RemoteAddr))
	writeHeader(bw, "X-Forwarded-Host", r.Host)
	if r.TLS != nil {
		bw.WriteString("X-Forwarded-Proto: https\r\n")
	} else {
		bw.WriteString("X-Forwarded-Proto: http\r\n")
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
	return bw.Flush()
}

func writeHeader(bw *bufio.Writer, k, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// skipRequestHeader lists what the gateway does not pass on: hop-by-hop
// headers, framing it writes itself, and client-supplied forwarding
// headers that it replaces.
var skipRequestHeader = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true,
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Upgrade": true, "Te": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
}

var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopByHop deletes hop-by-hop headers, and those the Connection
// header names, from a response.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(tok))
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
}

// listedIn reports whether the Connection header values name key.
func listedIn(conn []string, key string) bool {
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), key) {
				return true
			}
		}
	}
	return false
}

// clientIP is the address part of a RemoteAddr "ip:port" or "[ip]:port".
func clientIP(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		remote = remote[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(remote, "["), "]")
}

// idempotent reports whether r may be sent twice (RFC 9110, 9.2.2).
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return len(r.Header["Idempotency-Key"]) > 0 || len(r.Header["X-Idempotency-Key"]) > 0
}

func isEventStream(ct []string) bool {
	if len(ct) == 0 || !strings.HasPrefix(ct[0], "text/event-stream") {
		return false
	}
	mt, _, _ := mime.ParseMediaType(ct[0])
	return mt == "text/event-stream"
}

// cleanQuery re-encodes a query that the app might split differently from
// Go (semicolons, bad escapes), as httputil.ReverseProxy does: the app sees
// the parameters the gateway saw.
func cleanQuery(q string) string {
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return reencodeQuery(q)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencodeQuery(q)
			}
			i += 3
		default:
			i++
		}
	}
	return q
}

func reencodeQuery(q string) string {
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
