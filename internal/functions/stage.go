package functions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"noops/internal/access"
	"noops/internal/errkind"
	"noops/internal/events"
)

// Inspect is the layer's stage in the gateway's Shield, after the access
// layer and the WAF admitted the request: it serves invocations' status,
// queues asynchronous invocations, and answers or records requests that
// carry an Idempotency-Key. Requests with none of these pass untouched.
func (l *Layer) Inspect(w http.ResponseWriter, r *http.Request, app string) (http.ResponseWriter, func(int), bool) {
	if strings.HasPrefix(r.URL.Path, access.PlatformPrefix) {
		l.serveInvocation(w, r, app)
		return nil, nil, false
	}
	key := r.Header.Get("Idempotency-Key")
	async := preferAsync(r.Header)
	if key == "" && !async {
		return w, nil, true
	}
	conf := l.conf(app)
	if conf == nil {
		return w, nil, true
	}
	if conf.idemTTL == 0 || r.Method != http.MethodPost && r.Method != http.MethodPatch {
		key = "" // the app handles its keys itself; other methods are idempotent already
	}
	if key == "" && !async {
		return w, nil, true
	}
	limit := l.bus.MaxEventSize()
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		refuse(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return nil, nil, false
	}
	if len(body) > limit {
		why := "an asynchronous invocation"
		if !async {
			why = "a request with an Idempotency-Key"
		}
		refuse(w, http.StatusRequestEntityTooLarge, "the body of "+why+" may be at most "+itoa(limit)+" bytes")
		return nil, nil, false
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))

	var idem *events.Idempotency
	var hash string
	var rev uint64
	if key != "" {
		if len(key) > 255 {
			refuse(w, http.StatusBadRequest, "the Idempotency-Key is longer than 255 characters")
			return nil, nil, false
		}
		if idem, err = l.bus.Idempotency(r.Context(), app, conf.idemTTL); err != nil {
			l.log.Error("idempotency records unavailable", "app", app, "err", err)
			refuse(w, http.StatusServiceUnavailable, "the idempotency records are unavailable; try again")
			return nil, nil, false
		}
		sum := sha256.New()
		io.WriteString(sum, r.Method+" "+r.URL.RequestURI()+"\n")
		sum.Write(body)
		hash = hex.EncodeToString(sum.Sum(nil))
		out, rec, rv, err := idem.Begin(r.Context(), "http:"+key, hash, conf.timeout+10*time.Second)
		switch {
		case err != nil:
			l.log.Error("idempotency record", "app", app, "err", err)
			refuse(w, http.StatusServiceUnavailable, "the idempotency records are unavailable; try again")
			return nil, nil, false
		case out == events.Conflict:
			refuse(w, http.StatusConflict, "this Idempotency-Key was used with a different request (method, path or body); use a new key for a new request")
			return nil, nil, false
		case out == events.InProgress:
			w.Header().Set("Retry-After", "1")
			refuse(w, http.StatusConflict, "a request with this Idempotency-Key is still being processed; retry later for its response")
			return nil, nil, false
		case out == events.Replay:
			replay(w, rec)
			return nil, nil, false
		}
		rev = rv
	}
	if async {
		inv, err := l.bus.Invoke(r.Context(), app, r, body)
		if err != nil {
			if idem != nil {
				idem.Abandon(r.Context(), "http:"+key, rev)
			}
			status := http.StatusServiceUnavailable
			if errkind.Is(err, errkind.Invalid) {
				status = http.StatusRequestEntityTooLarge
			}
			refuse(w, status, err.Error())
			return nil, nil, false
		}
		rec := accepted(app, inv)
		if idem != nil {
			rec.Hash = hash
			idem.Complete(r.Context(), "http:"+key, rev, rec)
		}
		replayHeaders(w, &rec)
		w.Header().Set("Preference-Applied", "respond-async")
		w.WriteHeader(rec.Status)
		_, _ = w.Write(rec.Body)
		return nil, nil, false
	}
	cw := &captureWriter{ResponseWriter: w, limit: maxRecorded}
	done := func(status int) {
		ctx := r.Context()
		if status >= 500 || status == 499 {
			idem.Abandon(ctx, "http:"+key, rev) // a retry may succeed: let it run
			return
		}
		idem.Complete(ctx, "http:"+key, rev, events.Record{Hash: hash, Status: status, Header: cw.Header().Clone(), Body: cw.body.Bytes(), Truncated: cw.over})
	}
	return cw, done, true
}

// maxRecorded is the largest response body kept for a replay.
const maxRecorded = 1 << 20

// preferAsync reports a Prefer header asking for respond-async (RFC 7240).
func preferAsync(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(strings.SplitN(p, ";", 2)[0]), "respond-async") {
				return true
			}
		}
	}
	return false
}

// replay answers a stored response.
func replay(w http.ResponseWriter, rec *events.Record) {
	if rec.Truncated {
		refuse(w, http.StatusConflict, "this request was already processed (status "+itoa(rec.Status)+"), but its response was too large to keep for a replay")
		return
	}
	replayHeaders(w, rec)
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
}

func replayHeaders(w http.ResponseWriter, rec *events.Record) {
	for k, vs := range rec.Header {
		switch k {
		case "Content-Length", "Date", "Connection", "Transfer-Encoding", "Set-Cookie", "Strict-Transport-Security", "X-Request-Id":
			continue
		}
		w.Header()[k] = vs
	}
}

// captureWriter keeps a copy of the response for the idempotency record.
type captureWriter struct {
	http.ResponseWriter
	body  bytes.Buffer
	limit int
	over  bool
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if !c.over {
		if c.body.Len()+len(p) > c.limit {
			c.over = true
			c.body.Reset()
		} else {
			c.body.Write(p)
		}
	}
	return c.ResponseWriter.Write(p)
}

func (c *captureWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func itoa(n int) string { return strconv.Itoa(n) }
