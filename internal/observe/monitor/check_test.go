package monitor

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// checkOnce runs one check of s on a fresh Runner.
func checkOnce(t *testing.T, cfg Config, s Spec) Result {
	t.Helper()
	r := newRunner(t, cfg)
	mustSet(t, r, s)
	res, err := r.CheckNow(context.Background(), s.Name)
	if err != nil {
		t.Fatalf("CheckNow(%q): %v", s.Name, err)
	}
	return res
}

func TestHTTPConditions(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status": "up", "db": "ok"}`) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "overloaded", 503) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(150 * time.Millisecond)
		io.WriteString(w, "late")
	})
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Method != "HEAD" {
			http.Error(w, "no", 401)
		}
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("x", 64<<10)
		for range 160 { // 10 MiB, then the word the check looks for
			io.WriteString(w, chunk)
		}
		io.WriteString(w, "needle")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		spec    Spec
		ok      bool
		errWant string // substring of Result.Error
		detail  string // substring of Result.Detail
	}{
		{"200", Spec{Target: "/ok"}, true, "", "status 200 in "},
		{"503", Spec{Target: "/down"}, false, "status 503, want 2xx", "status 503"},
		{"503 accepted", Spec{Target: "/down", Status: []string{"2xx", "500-503"}}, true, "", ""},
		{"redirect not followed", Spec{Target: "/moved"}, false, "status 302, want 2xx", ""},
		{"redirect accepted", Spec{Target: "/moved", Status: []string{"3xx"}}, true, "", "status 302"},
		{"redirect followed", Spec{Target: "/moved", FollowRedirects: true, BodyContains: "up"}, true, "", "status 200"},
		{"body contains", Spec{Target: "/ok", BodyContains: `"db": "ok"`}, true, "", ""},
		{"body lacks", Spec{Target: "/ok", BodyContains: "degraded"}, false, `body does not contain "degraded"`, ""},
		{"body regexp", Spec{Target: "/ok", BodyRegexp: `"status":\s*"up"`}, true, "", ""},
		{"body regexp fails", Spec{Target: "/ok", BodyRegexp: `"status":\s*"down"`}, false, "body does not match", ""},
		{"latency within", Spec{Target: "/slow", MaxLatency: 5 * time.Second}, true, "", ""},
		{"latency above", Spec{Target: "/slow", MaxLatency: 50 * time.Millisecond}, false, "above 50ms", ""},
		{"method and headers", Spec{Target: "/auth", Method: "HEAD", Headers: map[string]string{"Authorization": "Bearer s3cret"}}, true, "", ""},
		{"headers missing", Spec{Target: "/auth"}, false, "status 401", ""},
		{"body past 1 MiB not read", Spec{Target: "/huge", BodyContains: "needle"}, false, `body does not contain "needle"`, "body cut at 1 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.spec
			s.Name, s.Kind, s.Target, s.Interval = "web", HTTP, srv.URL+s.Target, 10*time.Second
			res := checkOnce(t, Config{}, s)
			if res.OK != tc.ok || !strings.Contains(res.Error, tc.errWant) || !strings.Contains(res.Detail, tc.detail) {
				t.Errorf("check %s = %+v; want OK %v, error containing %q, detail containing %q", s.Target, res, tc.ok, tc.errWant, tc.detail)
			}
			if tc.ok && res.Error != "" {
				t.Errorf("check %s passed with error %q", s.Target, res.Error)
			}
			if res.Latency <= 0 {
				t.Errorf("check %s: latency %s, want > 0", s.Target, res.Latency)
			}
		})
	}
}

// TestBounded proves that a target that hangs or trickles costs a check no
// more than its Timeout, and that a name that does not resolve is a failed
// check with the resolver's message.
func TestBounded(t *testing.T) {
	t.Parallel()
	hang, _ := hangServer(t)
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := io.WriteString(w, "."); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(trickle.Close)
	slowHeaders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(slowHeaders.Close)
	resolver := nxdomainResolver(t)

	const timeout = 300 * time.Millisecond
	tests := []struct {
		name    string
		spec    Spec
		errWant []string
	}{
		{"http accepts and hangs", Spec{Kind: HTTP, Target: "http://" + hang + "/"}, []string{"timed out after 300ms"}},
		{"https handshake hangs", Spec{Kind: HTTP, Target: "https://" + hang + "/"}, []string{"timed out after 300ms"}},
		{"no response headers", Spec{Kind: HTTP, Target: slowHeaders.URL}, []string{"timed out after 300ms"}},
		{"body trickles forever", Spec{Kind: HTTP, Target: trickle.URL, BodyContains: "done"}, []string{"reading the body: timed out after 300ms"}},
		{"tls handshake hangs", Spec{Kind: TLS, Target: hang}, []string{"TLS handshake: timed out after 300ms"}},
		{"http unresolvable", Spec{Kind: HTTP, Target: "http://nope.invalid/health?token=secret"}, []string{"lookup nope.invalid", "no such host"}},
		{"tcp unresolvable", Spec{Kind: TCP, Target: "nope.invalid:80"}, []string{"lookup nope.invalid", "no such host"}},
		{"tls unresolvable", Spec{Kind: TLS, Target: "nope.invalid:443"}, []string{"lookup nope.invalid", "no such host"}},
		{"tcp refused", Spec{Kind: TCP, Target: closedAddr(t)}, []string{"connection refused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.spec
			s.Name, s.Interval, s.Timeout = "bounded", time.Second, timeout
			start := time.Now()
			res := checkOnce(t, Config{Resolver: resolver}, s)
			took := time.Since(start)
			if res.OK {
				t.Fatalf("check %s passed: %+v", s.Target, res)
			}
			for _, w := range tc.errWant {
				if !strings.Contains(res.Error, w) {
					t.Errorf("check %s: error %q, want it to contain %q", s.Target, res.Error, w)
				}
			}
			if strings.Contains(res.Error, "secret") {
				t.Errorf("check %s: error %q quotes the target URL", s.Target, res.Error)
			}
			if took > timeout+2*time.Second {
				t.Errorf("check %s took %s, want about %s at most", s.Target, took, timeout)
			}
		})
	}
}

func TestTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	res := checkOnce(t, Config{}, Spec{Name: "db", Kind: TCP, Target: ln.Addr().String()})
	if !res.OK || !strings.HasPrefix(res.Detail, "connected in ") {
		t.Errorf("tcp check of a listener = %+v, want OK, connected", res)
	}
}

func TestTLSCertificate(t *testing.T) {
	t.Parallel()
	clk := newClock()
	now := clk.Now()
	ca, other := newCA(t), newCA(t)
	serve := func(cert tls.Certificate) string {
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	short := serve(ca.leaf(t, now.Add(-time.Hour), now.Add(72*time.Hour), "app.example.com"))
	long := serve(ca.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "app.example.com", "127.0.0.1"))
	expired := serve(ca.leaf(t, now.Add(-48*time.Hour), now.Add(-47*time.Hour), "app.example.com"))
	untrusted := serve(other.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "app.example.com"))

	tests := []struct {
		name    string
		spec    Spec
		ok      bool
		errWant string
		detail  string
	}{
		{"valid 90 days", Spec{Target: long, Host: "app.example.com"}, true, "", "certificate for app.example.com expires in 90 days"},
		{"ip target", Spec{Target: long}, true, "", "expires in 90 days"},
		{"valid 3 days, want 14", Spec{Target: short, Host: "app.example.com"}, false, "certificate expires in 3 days (2026-03-04), want at least 14", "expires in 3 days"},
		{"valid 3 days, want 2", Spec{Target: short, Host: "app.example.com", CertMinDays: 2}, true, "", "expires in 3 days"},
		{"expired", Spec{Target: expired, Host: "app.example.com"}, false, "certificate expired 1 days ago", "expired on 2026-02-27"},
		{"wrong name", Spec{Target: long, Host: "other.example.com"}, false, "certificate does not verify: x509: certificate is valid for app.example.com", ""},
		{"untrusted", Spec{Target: untrusted, Host: "app.example.com"}, false, "certificate does not verify: x509: certificate signed by unknown authority", ""},
		{"untrusted, insecure", Spec{Target: untrusted, Host: "app.example.com", Insecure: true}, true, "", "expires in 90 days"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.spec
			s.Name, s.Kind, s.Interval = "cert", TLS, 10*time.Second
			res := checkOnce(t, Config{Now: clk.Now, RootCAs: ca.pool}, s)
			if res.OK != tc.ok || !strings.Contains(res.Error, tc.errWant) || !strings.Contains(res.Detail, tc.detail) {
				t.Errorf("tls check = %+v; want OK %v, error containing %q, detail containing %q", res, tc.ok, tc.errWant, tc.detail)
			}
		})
	}
}

// TestHTTPSThroughGateway probes an https server by IP with the Host of
// the app, as DefaultForApp does through the local gateway: the request
// carries the Host, and the certificate verifies against it.
func TestHTTPSThroughGateway(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	gotHost := make(chan string, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost <- r.Host
		fmt.Fprint(w, "healthy")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "hello.example.com")}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the check without the CA fails the handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)

	s := DefaultForApp("hello", "/healthz", srv.Listener.Addr().String(), "hello.example.com")
	if res := checkOnce(t, Config{RootCAs: ca.pool}, s); !res.OK {
		t.Fatalf("check through the gateway = %+v, want OK", res)
	}
	if h := <-gotHost; h != "hello.example.com" {
		t.Errorf("the server saw Host %q, want hello.example.com", h)
	}
	if res := checkOnce(t, Config{}, s); res.OK || !strings.Contains(res.Error, "certificate signed by unknown authority") {
		t.Errorf("check without the CA = %+v, want a verification failure", res)
	}
}
