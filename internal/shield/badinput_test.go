package shield

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"noops/internal/gateway"
	"noops/internal/gateway/ban"
	"noops/internal/spec"
)

// rawStatus sends raw bytes over a new TLS connection and returns the
// status code of the answer (0 when the connection closed without one).
func rawStatus(t *testing.T, p *platform, from string, raw []byte) int {
	t.Helper()
	c, err := p.dialTLS(from)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go c.Write(raw) // the server may answer before it has read everything
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

func TestBadInputRefusedCleanly(t *testing.T) {
	t.Parallel()
	// /upload has no WAF: the body limit is the gateway's, and a race
	// build of the rule engine takes seconds over a large body.
	manifest := spec.Config{WAF: spec.WAF{Routes: []spec.WAFRoute{{Path: "/upload", Mode: "off"}}}}
	p := start(t, options{limits: gateway.Limits{MaxBody: 1 << 20}, manifest: manifest,
		rules: map[ban.Trigger]ban.Rule{ban.Garbage: {Count: 1000, Window: time.Minute, Ban: time.Minute}}})
	gz := func(n int) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(bytes.Repeat([]byte("a"), n))
		w.Close()
		return b.Bytes()
	}
	bomb := gz(50 << 20)
	manyHeaders := strings.Repeat("X-H: 1\r\n", 150)
	for _, tc := range []struct {
		name string
		raw  string
		want int
	}{
		{"malformed request line", "GARBAGE\r\n\r\n", 400},
		{"bad percent-encoding", "GET /a%zz HTTP/1.1\r\nHost: app.localhost\r\n\r\n", 400},
		{"invalid UTF-8 path", "GET /%ff%fe HTTP/1.1\r\nHost: app.localhost\r\n\r\n", 400},
		{"huge header", "GET / HTTP/1.1\r\nHost: app.localhost\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", 431},
		{"too many headers", "GET / HTTP/1.1\r\nHost: app.localhost\r\n" + manyHeaders + "\r\n", 431},
		{"URI too long", "GET /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\nHost: app.localhost\r\n\r\n", 414},
		{"declared body over the limit", "POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 2000000\r\n\r\n", 413},
		{"compression bomb", fmt.Sprintf("POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(bomb), bomb), 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawStatus(t, p, "127.0.0.20", []byte(tc.raw)); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
			if st, err := get(t, p.client("127.0.0.21"), "/"); err != nil || st != 200 {
				t.Errorf("another client then got %d %v", st, err)
			}
		})
	}
	// A chunked body past the limit is cut off at the limit.
	t.Run("chunked body over the limit", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("POST /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := strings.Repeat("z", 64<<10)
		for i := 0; i < 20; i++ {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		b.WriteString("0\r\n\r\n")
		if got := rawStatus(t, p, "127.0.0.20", []byte(b.String())); got != 413 {
			t.Errorf("status %d, want 413", got)
		}
	})
	if n := len(p.eventsOf(KindBan)); n != 0 {
		t.Errorf("%d bans with a garbage threshold of 1000", n)
	}
}

// Repeated garbage bans the client.
func TestGarbageBans(t *testing.T) {
	t.Parallel()
	p := start(t, options{rules: map[ban.Trigger]ban.Rule{ban.Garbage: {Count: 3, Window: time.Minute, Ban: time.Minute}}})
	for i := 0; i < 3; i++ {
		rawStatus(t, p, "127.0.0.22", []byte("GARBAGE\r\n\r\n"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(p.eventsOf(KindBan)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	bans := p.eventsOf(KindBan)
	if len(bans) != 1 || bans[0].Ban.Trigger != "garbage" {
		t.Fatalf("bans %+v, want one garbage ban", bans)
	}
	if _, err := p.dialTLS("127.0.0.22"); err == nil {
		t.Error("the banned client connected")
	}
	_ = io.Discard
}
