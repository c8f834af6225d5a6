package waf

import (
	"bytes"
	"net/http"
)

// Response returns a writer that inspects the app's response when the
// route asks for it (Settings.Responses), else w itself. Response headers
// go through phase 3; a text body (SecResponseBodyMimeType) is held back
// up to BodyLimit bytes and goes through phase 4 before the client sees
// any of it; the rest of a longer body streams uninspected. A refused
// response becomes an empty one with the refusal's status. Call Finish
// (on the returned writer, via t.Finish) after the handler returns.
func (t *Tx) Response(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if !t.s.Responses || t.ev.Blocked || r.Header.Get("Upgrade") != "" {
		return w
	}
	t.rw = &respInspector{t: t, w: w, proto: r.Proto}
	return t.rw
}

// Finish completes the response inspection started by Response: it
// inspects a body still held back and sends it, or the refusal.
func (t *Tx) Finish() {
	if t.rw != nil {
		t.rw.finish()
	}
}

type respInspector struct {
	t       *Tx
	w       http.ResponseWriter
	proto   string
	status  int
	wrote   bool // WriteHeader was called
	hold    bool // the body is held back for phase 4
	buf     bytes.Buffer
	passing bool // headers sent: the rest streams
	refused bool // discard everything
}

func (ri *respInspector) Header() http.Header { return ri.w.Header() }

func (ri *respInspector) WriteHeader(code int) {
	if ri.wrote {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		ri.w.WriteHeader(code) // 1xx: informational, passed on
		return
	}
	ri.wrote, ri.status = true, code
	tx := ri.t.tx
	for k, vs := range ri.w.Header() {
		for _, v := range vs {
			tx.AddResponseHeader(k, v)
		}
	}
	if it := tx.ProcessResponseHeaders(code, ri.proto); it != nil && ri.t.interrupted(it) {
		ri.refuse()
		return
	}
	if tx.IsResponseBodyAccessible() && tx.IsResponseBodyProcessable() {
		ri.hold = true
		return
	}
	ri.pass()
}

func (ri *respInspector) Write(p []byte) (int, error) {
	if !ri.wrote {
		ri.WriteHeader(http.StatusOK)
	}
	switch {
	case ri.refused:
		return len(p), nil
	case ri.passing:
		return ri.w.Write(p)
	}
	ri.buf.Write(p)
	if int64(ri.buf.Len()) >= ri.t.s.BodyLimit {
		// Past the cap: inspect what is held, then stream the rest.
		if ri.inspectBody() {
			return len(p), nil
		}
		ri.pass()
	}
	return len(p), nil
}

// inspectBody runs phase 4 on the held body; true when it was refused.
func (ri *respInspector) inspectBody() bool {
	held := ri.buf.Bytes()
	if int64(len(held)) > ri.t.s.BodyLimit {
		held = held[:ri.t.s.BodyLimit]
	}
	tx := ri.t.tx
	if it, _, err := tx.WriteResponseBody(held); err == nil && it != nil && ri.t.interrupted(it) {
		ri.refuse()
		return true
	}
	if it, err := tx.ProcessResponseBody(); err == nil && it != nil && ri.t.interrupted(it) {
		ri.refuse()
		return true
	}
	return false
}

// pass sends the headers and what is held, then streams.
func (ri *respInspector) pass() {
	ri.hold, ri.passing = false, true
	ri.w.WriteHeader(ri.status)
	if ri.buf.Len() > 0 {
		ri.w.Write(ri.buf.Bytes())
		ri.buf = bytes.Buffer{}
	}
}

// refuse replaces the response with an empty one of the refusal's status.
func (ri *respInspector) refuse() {
	ri.refused, ri.hold = true, false
	ri.buf = bytes.Buffer{}
	h := ri.w.Header()
	for k := range h {
		if k != "X-Request-Id" && k != "Strict-Transport-Security" {
			delete(h, k)
		}
	}
	h.Set("Content-Length", "0")
	ri.w.WriteHeader(ri.t.ev.Status)
}

func (ri *respInspector) finish() {
	if !ri.wrote {
		return
	}
	if ri.hold && !ri.inspectBody() {
		ri.pass()
	}
}

// Flush is honoured once the body streams; a held body waits for Finish.
func (ri *respInspector) Flush() {
	if ri.passing {
		if f, ok := ri.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (ri *respInspector) Unwrap() http.ResponseWriter { return ri.w }
