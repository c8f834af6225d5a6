package waf

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func benchInspect(b *testing.B, newReq func() *httptestReq) {
	e := crs(b)
	s := settings(b, Settings{Mode: Block})
	b.ReportAllocs()
	for b.Loop() {
		r := newReq()
		tx := e.Begin(r.r, s, "bench")
		if refuse, err := tx.Request(r.r); refuse || err != nil {
			b.Fatalf("refused: %v %v", refuse, err)
		}
		tx.End()
	}
}

type httptestReq struct{ r *http.Request }

// BenchmarkInspectGET is a GET with a query string and browser headers.
func BenchmarkInspectGET(b *testing.B) {
	benchInspect(b, func() *httptestReq {
		r := httptest.NewRequest("GET", "https://shop.localhost/search?q=shoes&page=2&sort=price", nil)
		browserHeaders(r)
		return &httptestReq{r}
	})
}

// BenchmarkInspectForm4K is a 4 KB form POST of benign fields.
func BenchmarkInspectForm4K(b *testing.B) {
	v := url.Values{}
	for i := 0; len(v.Encode()) < 4000; i++ {
		v.Set("field"+string(rune('a'+i%26))+string(rune('a'+i/26)), "some ordinary text value")
	}
	body := v.Encode()
	benchInspect(b, func() *httptestReq {
		r := httptest.NewRequest("POST", "https://shop.localhost/checkout", strings.NewReader(body))
		browserHeaders(r)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Content-Length", "4000")
		return &httptestReq{r}
	})
}

func browserHeaders(r *http.Request) {
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36")
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Accept-Language", "en-US,en;q=0.9")
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("Cookie", "session=abc123; theme=dark")
}
