package waf

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"
)

// Event is what the WAF saw in one request: the rules that matched (in
// every mode) and what was done about them.
type Event struct {
	Mode     Mode    `json:"mode"`
	Paranoia int     `json:"paranoia"`
	Blocked  bool    `json:"blocked"`          // the request or its response was refused
	Status   int     `json:"status,omitempty"` // the refusal's status
	Rules    []Match `json:"rules"`
	// Inbound and Outbound are the CRS anomaly scores.
	Inbound  int `json:"inbound_score"`
	Outbound int `json:"outbound_score,omitempty"`
	// Skipped says why the request body was not inspected; Truncated that
	// only its first BodyLimit bytes were.
	Skipped   string `json:"skipped,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Match is one matched rule.
type Match struct {
	ID       int    `json:"id"`
	Message  string `json:"msg,omitempty"`
	Data     string `json:"data,omitempty"`
	Severity string `json:"severity,omitempty"`
	Phase    int    `json:"phase"`
}

// IDs returns the matched rule IDs.
func (e *Event) IDs() []int {
	ids := make([]int, len(e.Rules))
	for i, m := range e.Rules {
		ids[i] = m.ID
	}
	return ids
}

// ErrBomb refuses a compressed request body that expands more than
// MaxExpansion times within the inspection cap.
var ErrBomb = errors.New("the compressed request body expands over 100 times: refused as a compression bomb")

// MaxExpansion is the largest expansion ratio of a compressed body.
const MaxExpansion = 100

// Tx is the inspection of one request. Begin one per request, then call
// Request, optionally Response, and always End.
type Tx struct {
	e   *Engine
	tx  types.Transaction
	s   Settings
	ev  Event
	buf *bytes.Buffer // the inspected request body prefix, replayed to the app
	rw  *respInspector
}

// Begin starts the inspection of r under s (normalized settings); id
// names the transaction in Coraza's logs (the gateway's request ID).
func (e *Engine) Begin(r *http.Request, s Settings, id string) *Tx {
	var tx types.Transaction
	if e.opt != nil {
		tx = e.opt.NewTransactionWithOptions(experimental.Options{ID: id, Context: r.Context()})
	} else {
		tx = e.waf.NewTransaction()
	}
	return &Tx{e: e, tx: tx, s: s, ev: Event{Mode: s.Mode, Paranoia: s.Paranoia}}
}

// Request inspects the request line, headers and body. It replaces r.Body
// with one that gives the app the whole body again. refuse is true when
// the route blocks and a rule refused the request; err reports a body that
// could not be read (the client stalled or went away) or ErrBomb.
func (t *Tx) Request(r *http.Request) (refuse bool, err error) {
	tx := t.tx
	client, cport := splitAddr(r.RemoteAddr)
	var server string
	var sport int
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		server, sport = splitAddr(la.String())
	}
	tx.ProcessConnection(client, cport, server, sport)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(hostOnly(r.Host))
	}
	if r.ContentLength > 0 && r.Header.Get("Content-Length") == "" {
		tx.AddRequestHeader("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if m := txMap(tx); m != nil {
		m.Set("noops_mode", []string{string(t.s.Mode)})
		m.Set("blocking_paranoia_level", []string{strconv.Itoa(t.s.Paranoia)})
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return t.interrupted(it), nil
	}
	if r.Body != nil && r.Body != http.NoBody && tx.IsRequestBodyAccessible() {
		if err := t.body(r); err != nil {
			return false, err
		}
	}
	it, err := tx.ProcessRequestBody()
	if err != nil {
		return false, err
	}
	if it != nil {
		return t.interrupted(it), nil
	}
	return false, nil
}

// body feeds the engine up to BodyLimit bytes of the request body, or
// says why it does not.
func (t *Tx) body(r *http.Request) error {
	if why := skipReason(r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding")); why != "" {
		t.ev.Skipped = why
		return nil
	}
	limit := t.s.BodyLimit
	// Not pooled: the upstream transport may read the body after the
	// response has come back.
	t.buf = new(bytes.Buffer)
	// One byte past the cap tells whether there is more.
	if _, err := t.buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return err
	}
	r.Body = replay{io.MultiReader(bytes.NewReader(t.buf.Bytes()), r.Body), r.Body}
	data := t.buf.Bytes()
	if int64(len(data)) > limit {
		data, t.ev.Truncated = data[:limit], true
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "gzip", "x-gzip", "deflate":
		plain, err := inflate(enc, data, limit)
		if err != nil {
			return err
		}
		if plain == nil {
			t.ev.Skipped = "compressed body that does not decompress"
			return nil
		}
		data = plain
	}
	if _, _, err := t.tx.WriteRequestBody(data); err != nil {
		return err
	}
	return nil
}

// inflate decompresses up to limit bytes; nil when the data is not valid
// for its encoding; ErrBomb when it expands past MaxExpansion.
func inflate(enc string, data []byte, limit int64) ([]byte, error) {
	in := bytes.NewReader(data) // a ByteReader: the decompressor reads no further than it needs
	var zr io.Reader
	if enc == "deflate" {
		zr = flate.NewReader(in)
	} else {
		gz, err := gzip.NewReader(in)
		if err != nil {
			return nil, nil
		}
		zr = gz
	}
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(zr, limit))
	if used := int64(len(data) - in.Len()); n >= limit && n > used*MaxExpansion {
		return nil, ErrBomb
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && out.Len() == 0 {
		return nil, nil
	}
	return out.Bytes(), nil
}

// interrupted records an interruption and says whether to refuse.
func (t *Tx) interrupted(it *types.Interruption) bool {
	if t.s.Mode != Block || it.Action == "allow" || it.Action == "pass" {
		return false
	}
	t.ev.Blocked = true
	t.ev.Status = it.Status
	if t.ev.Status == 0 || it.Action != "deny" && it.Action != "drop" {
		t.ev.Status = http.StatusForbidden
	}
	return true
}

// End runs the logging phase, frees the transaction and returns the event:
// nil when no rule that logs matched.
func (t *Tx) End() *Event {
	t.tx.ProcessLogging()
	var ev *Event
	for _, mr := range t.tx.MatchedRules() {
		if l, ok := mr.(interface{ Log() bool }); ok && !l.Log() {
			continue
		}
		md := mr.Rule()
		t.ev.Rules = append(t.ev.Rules, Match{ID: md.ID(), Message: mr.Message(), Data: clip(mr.Data(), 200),
			Severity: severity(md.Severity()), Phase: int(md.Phase())})
	}
	if len(t.ev.Rules) > 0 || t.ev.Blocked {
		t.ev.Inbound, t.ev.Outbound = anomaly(t.tx)
		ev = &t.ev
	}
	if err := t.tx.Close(); err != nil {
		t.e.log.Debug("closing a WAF transaction", "err", err)
	}
	t.buf = nil
	return ev
}

func severity(s types.RuleSeverity) string {
	if s < 0 {
		return ""
	}
	return s.String()
}

// replay gives the app the inspected prefix, then the rest of the body,
// and closes the original.
type replay struct {
	io.Reader
	orig io.Closer
}

func (r replay) Close() error { return r.orig.Close() }

// binaryTypes are media types whose bodies are not inspected: the CRS has
// no parser for them and their bytes set off text rules at random.
var binaryTypes = map[string]bool{
	"application/octet-stream": true, "application/zip": true, "application/gzip": true,
	"application/x-gzip": true, "application/x-tar": true, "application/x-bzip2": true,
	"application/x-xz": true, "application/zstd": true, "application/pdf": true,
	"application/wasm": true, "application/grpc": true, "application/protobuf": true,
	"application/x-protobuf": true, "application/vnd.oci.image.layer.v1.tar+gzip": true,
	"application/vnd.docker.image.rootfs.diff.tar.gzip": true,
}

// skipReason says why a body of this content type and encoding is not
// inspected, or "" when it is. Skipped: images, audio, video, fonts, the
// binary types above and encodings other than gzip and deflate (their
// bytes are opaque to the rules).
func skipReason(ct, ce string) string {
	switch strings.ToLower(strings.TrimSpace(ce)) {
	case "", "identity", "gzip", "x-gzip", "deflate":
	default:
		return "content encoding " + ce
	}
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "" // a malformed type is inspected: rule 920470 judges it
	}
	if binaryTypes[mt] {
		return "binary content type " + mt
	}
	if top, _, _ := strings.Cut(mt, "/"); top == "image" || top == "audio" || top == "video" || top == "font" {
		return "binary content type " + mt
	}
	return ""
}

func splitAddr(s string) (string, int) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return s, 0
	}
	return ap.Addr().Unmap().String(), int(ap.Port())
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
