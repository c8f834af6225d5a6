package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
)

// TestOneRequestConnectionsAreNotGarbage: a client that opens a
// connection for each request and closes it (an uptime monitor, curl in
// a loop), over HTTP/2 or HTTP/1.1, is never struck as a garbage sender.
func TestOneRequestConnectionsAreNotGarbage(t *testing.T) {
	var strikes atomic.Int32
	tg := startGateway(t, false, func(c *Config) {
		c.Strike = func(_ netip.Addr, kind, detail string) { strikes.Add(1); t.Logf("strike %s: %s", kind, detail) }
	})
	up := newUpstream(t, "app")
	tg.SetBackends("app", []Backend{up.backend()}, "")
	https, _ := tg.Addr()
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{DisableKeepAlives: true, ForceAttemptHTTP2: h2,
			TLSClientConfig: &tls.Config{ServerName: "app." + testDomain, InsecureSkipVerify: true}}
		c := &http.Client{Transport: tr}
		for range 3 {
			req, _ := http.NewRequestWithContext(context.Background(), "GET", "https://"+https.String()+"/healthz", nil)
			req.Host = "app." + testDomain
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if want := map[bool]int{true: 2, false: 1}[h2]; resp.ProtoMajor != want || resp.StatusCode != 200 {
				t.Fatalf("answer %s %d, want HTTP/%d 200", resp.Proto, resp.StatusCode, want)
			}
		}
	}
	if n := strikes.Load(); n != 0 {
		t.Errorf("%d strikes against a client that made 6 good requests", n)
	}
}
