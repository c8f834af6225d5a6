package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// encoding is the wire format of a request, and so of its response.
type encoding int

const (
	encProto encoding = iota
	encJSON
)

func (e encoding) contentType() string {
	if e == encJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// requestEncoding reads the Content-Type.
func requestEncoding(ct string) (encoding, bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, false
	}
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		return encProto, true
	case "application/json":
		return encJSON, true
	}
	return 0, false
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { b := bufPool.Get().(*bytes.Buffer); b.Reset(); return b }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 8<<20 {
		bufPool.Put(b)
	}
}

// readBody reads the request's body, decompressed, into buf: at most max
// bytes before and after decompression.
func readBody(req *http.Request, max int, buf *bytes.Buffer) *httpError {
	if req.ContentLength > int64(max) {
		return tooLarge(max)
	}
	var gz bool
	switch ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip":
		gz = true
	default:
		return &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Encoding %.40q is not supported: use gzip or none", ce)}
	}
	if !gz {
		if n, err := buf.ReadFrom(io.LimitReader(req.Body, int64(max)+1)); err != nil {
			return readFailed(err)
		} else if n > int64(max) {
			return tooLarge(max)
		}
		return nil
	}
	raw := getBuf()
	defer putBuf(raw)
	if n, err := raw.ReadFrom(io.LimitReader(req.Body, int64(max)+1)); err != nil {
		return readFailed(err)
	} else if n > int64(max) {
		return tooLarge(max)
	}
	zr, err := gzip.NewReader(raw)
	if err != nil {
		return badRequest("the body is not gzip: %v", err)
	}
	n, err := buf.ReadFrom(io.LimitReader(zr, int64(max)+1))
	if n > int64(max) {
		return &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the body decompresses to more than %d bytes", max)}
	}
	if err != nil {
		return badRequest("decompressing the body: %v", err)
	}
	return nil
}

func readFailed(err error) *httpError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(int(mbe.Limit))
	}
	return badRequest("reading the body: %v", err)
}

func tooLarge(max int) *httpError {
	return &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the body is over %d bytes", max)}
}

var jsonOptions = protojson.UnmarshalOptions{DiscardUnknown: true}

// unmarshal decodes body into m in the given encoding. OTLP JSON differs
// from the canonical protobuf JSON mapping in one way: trace and span IDs
// are hex, not base64; unmarshal rewrites them before decoding.
func unmarshal(enc encoding, body []byte, m proto.Message) error {
	if enc == encProto {
		return proto.Unmarshal(body, m)
	}
	fixed, err := hexIDsToBase64(body)
	if err != nil {
		return err
	}
	return jsonOptions.Unmarshal(fixed, m)
}

// idKeys are the JSON fields that hold trace or span IDs in OTLP (spans,
// links, log records, exemplars).
var idKeys = map[string]int{
	"traceId": 16, "trace_id": 16,
	"spanId": 8, "span_id": 8,
	"parentSpanId": 8, "parent_span_id": 8,
}

// badID decodes to one byte, which Convert rejects as a wrong length.
var badID = base64.StdEncoding.EncodeToString([]byte{0})

func hexIDsToBase64(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("reading JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("reading JSON: data after the top-level value")
	}
	fixIDs(v, 0)
	return json.Marshal(v)
}

func fixIDs(v any, depth int) {
	if depth > 64 {
		return // deeper than any OTLP ID lives; protojson bounds the rest
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if n, ok := idKeys[k]; ok {
				if s, ok := e.(string); ok {
					x[k] = hexID(s, n)
					continue
				}
			}
			fixIDs(e, depth+1)
		}
	case []any:
		for _, e := range x {
			fixIDs(e, depth+1)
		}
	}
}

// hexID turns a hex ID of n bytes into base64; "" stays (no parent), and
// anything else becomes an ID of the wrong length, rejected per span.
func hexID(s string, n int) string {
	if s == "" {
		return ""
	}
	if len(s) != 2*n {
		return badID
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return badID
	}
	return base64.StdEncoding.EncodeToString(b)
}
