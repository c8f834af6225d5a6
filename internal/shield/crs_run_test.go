package shield

// The machinery of the CRS regression run: the upstream (go-ftw's albedo
// backend), the watch on the gateway's request log that says when a
// request is over, and sending one stage and judging its result.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// albedo is the part of go-ftw's albedo backend the CRS tests use: POST
// /reflect answers with the status, headers and body its JSON asks for
// (the response rules' tests); any other request is answered 200 without
// a body.
func albedo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/reflect" {
			return
		}
		if err != nil {
			http.Error(w, "Failed to parse request body", http.StatusBadRequest)
			return
		}
		var spec struct {
			Status      int               `json:"status"`
			Headers     map[string]string `json:"headers"`
			Body        string            `json:"body"`
			EncodedBody string            `json:"encodedBody"`
			LogMessage  string            `json:"logMessage"`
		}
		if err := json.Unmarshal(body, &spec); err != nil {
			http.Error(w, "Invalid JSON in request body", http.StatusBadRequest)
			return
		}
		for k, v := range spec.Headers {
			w.Header().Add(k, v)
		}
		if spec.Status > 0 && spec.Status < 100 || spec.Status >= 600 {
			http.Error(w, fmt.Sprintf("Invalid status code: %d", spec.Status), http.StatusBadRequest)
			return
		}
		out := []byte(spec.Body)
		if spec.Body == "" && spec.EncodedBody != "" {
			if out, err = base64.StdEncoding.DecodeString(spec.EncodedBody); err != nil {
				http.Error(w, "invalid base64 encoding of response body", http.StatusBadRequest)
				return
			}
		}
		status := spec.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		w.Write(out)
	})
}

// reqEnd is what the gateway logged when it finished a request.
type reqEnd struct {
	status  int
	backend string // "" (no app at the host), "hygiene", "shield" or the app's backend
}

// reqWatch is a slog.Handler for the gateway's log. The gateway logs
// "request" (at debug level) after the Shield's done hook has run, so
// once it is seen the request's security event, if any, has been
// emitted: no event then means no rule matched. It also keeps the
// gateway's warnings and errors.
type reqWatch struct {
	mu    sync.Mutex
	ends  map[string]*reqWait
	warns []string
}

type reqWait struct {
	done chan struct{}
	end  reqEnd
}

func newReqWatch() *reqWatch { return &reqWatch{ends: map[string]*reqWait{}} }

// warnings returns what the gateway logged at warning level or above.
func (w *reqWatch) warnings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.warns)
}

func (w *reqWatch) wait(id string) *reqWait {
	w.mu.Lock()
	defer w.mu.Unlock()
	rw := w.ends[id]
	if rw == nil {
		rw = &reqWait{done: make(chan struct{})}
		w.ends[id] = rw
	}
	return rw
}

// ended waits for the end of request id.
func (w *reqWatch) ended(id string, timeout time.Duration) (reqEnd, bool) {
	rw := w.wait(id)
	select {
	case <-rw.done:
		return rw.end, true
	case <-time.After(timeout):
		return reqEnd{}, false
	}
}

func (w *reqWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *reqWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *reqWatch) WithGroup(string) slog.Handler            { return w }

func (w *reqWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
		w.mu.Lock()
		w.warns = append(w.warns, b.String())
		w.mu.Unlock()
		return nil
	}
	if r.Message != "request" {
		return nil
	}
	var id string
	var end reqEnd
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "request_id":
			id = a.Value.String()
		case "status":
			end.status = int(a.Value.Int64())
		case "backend":
			end.backend = a.Value.String()
		}
		return true
	})
	if id != "" {
		rw := w.wait(id)
		rw.end = end
		close(rw.done)
	}
	return nil
}

// crsReply is what one request of a test got.
type crsReply struct {
	err    error  // no response (go-ftw's request error)
	status int    // the response's status
	head   string // status line and headers, for response_contains
	body   []byte
	id     string // X-Request-Id: absent when net/http answered before the gateway
	dupID  bool   // X-Request-Id came more than once
	end    reqEnd
	ended  bool   // the gateway logged the request's end
	event  *Event // the security event of the request
	rules  []int
	log    []string // a log line per matched rule, for match_regex
}

// crsSend writes raw over a new TLS connection to the gateway and reads the
// response, then the request's end and event.
func crsSend(p *platform, watch *reqWatch, raw []byte, method string) crsReply {
	var r crsReply
	c, err := p.dialTLS("127.0.0.1")
	if err != nil {
		r.err = err
		return r
	}
	defer c.Close()
	// Generous: a body of 64,000 bytes in 255 arguments takes seconds
	// at paranoia level 4 under the race detector.
	c.SetDeadline(time.Now().Add(time.Minute))
	// A write error is not the end: the server may have answered (a 400)
	// and closed before reading everything.
	_, werr := c.Write(raw)
	br := bufio.NewReader(c)
	var res *http.Response
	for {
		res, err = http.ReadResponse(br, &http.Request{Method: method})
		if err != nil || res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if err != nil {
		r.err = errors.Join(err, werr)
		return r
	}
	r.body, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		r.err = err
		return r
	}
	r.status = res.StatusCode
	var hb strings.Builder
	fmt.Fprintf(&hb, "%s %s\r\n", res.Proto, res.Status)
	res.Header.Write(&hb)
	r.head = hb.String()
	r.id = res.Header.Get("X-Request-Id")
	r.dupID = len(res.Header.Values("X-Request-Id")) > 1
	if r.id == "" {
		return r
	}
	r.end, r.ended = watch.ended(r.id, 30*time.Second)
	r.event = p.eventNow(r.id)
	if r.event != nil && r.event.WAF != nil {
		for _, m := range r.event.WAF.Rules {
			r.rules = append(r.rules, m.ID)
			// The shape of Coraza's error log line (its fields quoted
			// with %q), which the tests' regular expressions match.
			r.log = append(r.log, fmt.Sprintf("Coraza: Warning. %s [id %q] [msg %q] [data %q] [severity %q]",
				m.Message, strconv.Itoa(m.ID), m.Message, m.Data, m.Severity))
		}
	}
	return r
}

// eventNow returns the event of a request ID, without waiting.
func (p *platform) eventNow(id string) *Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.events) - 1; i >= 0; i-- {
		if p.events[i].RequestID == id {
			e := p.events[i]
			return &e
		}
	}
	return nil
}

// crsJudge is go-ftw's checkResult: an expected error first, then the
// status, the response text and the log. It returns why the stage
// failed, or "".
func crsJudge(out ftwOutput, r crsReply) string {
	if out.ExpectError != nil && *out.ExpectError {
		if r.err != nil {
			return ""
		}
		return fmt.Sprintf("expected an error, got status %d", r.status)
	}
	if r.err != nil {
		return "no response: " + r.err.Error()
	}
	if out.Status != 0 && r.status != out.Status {
		return fmt.Sprintf("status %d, want %d", r.status, out.Status)
	}
	if out.ResponseContains != "" && !strings.Contains(r.head+"\r\n"+string(r.body), out.ResponseContains) {
		return fmt.Sprintf("response does not contain %q", out.ResponseContains)
	}
	l := out.Log
	if l.MatchRegex != "" && !crsLogMatches(r.log, l.MatchRegex) {
		return fmt.Sprintf("no log line matches %q", l.MatchRegex)
	}
	var missing, unwanted []int
	for _, id := range l.ExpectIDs {
		if !slices.Contains(r.rules, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("missing rules %v", missing)
	}
	if out.Isolated && len(r.rules) != 1 {
		return fmt.Sprintf("isolated: %d rules matched, want 1", len(r.rules))
	}
	if l.NoMatchRegex != "" && crsLogMatches(r.log, l.NoMatchRegex) {
		return fmt.Sprintf("a log line matches %q", l.NoMatchRegex)
	}
	for _, id := range l.NoExpectIDs {
		if slices.Contains(r.rules, id) {
			unwanted = append(unwanted, id)
		}
	}
	if len(unwanted) > 0 {
		return fmt.Sprintf("unexpected rules %v", unwanted)
	}
	return ""
}

func crsLogMatches(lines []string, expr string) bool {
	re, err := regexp.Compile(expr)
	if err != nil {
		return false
	}
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// crsWhere says how far a request got in the platform: the class of a
// failure that is not the WAF's.
func crsWhere(r crsReply) string {
	switch {
	case r.err != nil:
		return "no response"
	case r.id == "":
		return fmt.Sprintf("net/http refused it (%d) before the gateway", r.status)
	case !r.ended:
		return "the gateway did not log the request's end"
	case r.end.backend == "":
		return fmt.Sprintf("the gateway answered %d: no app at the Host", r.status)
	case r.end.backend == "hygiene":
		return fmt.Sprintf("the gateway's hygiene refused it (%d)", r.status)
	}
	return "WAF"
}
