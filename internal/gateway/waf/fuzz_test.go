package waf

import (
	"bytes"
	"io"
	"net/http/httptest"
	"testing"
)

// FuzzInspect feeds the engine arbitrary request targets, bodies and
// body headers: it must never panic, and the app must always receive the
// body exactly as sent.
func FuzzInspect(f *testing.F) {
	f.Add("/?q=1", "application/x-www-form-urlencoded", "", []byte("a=1&b=2"))
	f.Add("/x", "application/json", "", []byte(`{"a":[1,{"b":"<script>"}]}`))
	f.Add("/x", "multipart/form-data; boundary=X", "", []byte("--X\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n--X--\r\n"))
	f.Add("/x", "text/xml", "", []byte("<a><b>1' OR 1=1--</b></a>"))
	f.Add("/x", "application/x-www-form-urlencoded", "gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0})
	f.Add("/x", "application/x-www-form-urlencoded", "deflate", []byte{0xff, 0xfe})
	e := crs(f)
	f.Fuzz(func(t *testing.T, target, ctype, cenc string, body []byte) {
		r := httptest.NewRequest("POST", "https://a.localhost/", bytes.NewReader(body))
		r.RequestURI = target
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("Content-Encoding", cenc)
		for _, mode := range []Mode{Detect, Block} {
			r.Body = io.NopCloser(bytes.NewReader(body))
			tx := e.Begin(r, Settings{Mode: mode, Paranoia: 4, BodyLimit: 64, Responses: true}, "fuzz")
			refuse, err := tx.Request(r)
			if err == nil && !refuse {
				got, _ := io.ReadAll(r.Body)
				if !bytes.Equal(got, body) {
					t.Fatalf("the app would read %q, sent %q", got, body)
				}
			}
			tx.End()
		}
	})
}
