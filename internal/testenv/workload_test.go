package testenv

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// callerMain is an app that calls other apps the way a workload should:
// through the gateway's internal listener, presenting its SVID, read from
// its identity folder again for every connection (rotation-safe). /dial
// tries a direct TCP connection instead; /serial shows its certificate's
// serial number.
const callerMain = `package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := os.Getenv("NOOPS_IDENTITY_DIR")
	gw := os.Getenv("NOOPS_GATEWAY_INTERNAL")
	client := func() (*http.Client, error) {
		bundle, err := os.ReadFile(filepath.Join(dir, "bundle.pem"))
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(bundle)
		cfg := &tls.Config{RootCAs: roots, ServerName: "gateway.internal",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				b, err := os.ReadFile(filepath.Join(dir, "svid.pem"))
				if err != nil {
					return nil, err
				}
				c, err := tls.X509KeyPair(b, b)
				return &c, err
			}}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /call", func(w http.ResponseWriter, r *http.Request) {
		c, err := client()
		if err != nil {
			http.Error(w, "identity: "+err.Error(), 500)
			return
		}
		req, _ := http.NewRequest("GET", gw+r.URL.Query().Get("path"), nil)
		req.Host = r.URL.Query().Get("target")
		resp, err := c.Do(req)
		if err != nil {
			http.Error(w, "call: "+err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "%d %s", resp.StatusCode, b)
	})
	mux.HandleFunc("GET /dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 3*time.Second)
		if err != nil {
			fmt.Fprintf(w, "refused: %v", err)
			return
		}
		c.Close()
		fmt.Fprint(w, "connected")
	})
	mux.HandleFunc("GET /serial", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(dir, "svid.pem"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		c, err := tls.X509KeyPair(b, b)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		fmt.Fprint(w, leaf.SerialNumber.Text(16), " ", leaf.URIs[0])
	})
	srv := &http.Server{Addr: ":" + os.Getenv("PORT"), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		panic(err)
	}
}
`

// callerApp is the caller program with a public access section.
func callerApp(t *testing.T, name string) string {
	t.Helper()
	dir := guardedApp(t, name, "access: { policy: public }\n")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(callerMain), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestWorkloads runs three apps on one platform whose SVIDs live 4 s:
// front (a caller), back (its policy admits workload front) and sealed
// (users only).
func TestWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const ttl = 4 * time.Second
	e := Start(t, Options{WorkloadTTL: ttl})
	deployOK(t, e, callerApp(t, "front"), "front")
	back := guardedApp(t, "back", "access: { policy: back.cedar }\n")
	policy := "@id(\"front-reads\")\npermit (principal == Workload::\"front\", action == Action::\"GET\", resource);\n" +
		"// example: allow workload=front method=GET path=/\n// example: deny workload=other method=GET path=/\n"
	if err := os.WriteFile(filepath.Join(back, "back.cedar"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	deployOK(t, e, back, "back")
	deployOK(t, e, guardedApp(t, "sealed", "access: { policy: authenticated }\n"), "sealed")

	t.Run("calls through the gateway", func(t *testing.T) { workloadCalls(t, e) })
	t.Run("no direct connections", func(t *testing.T) { sandboxIsolation(t, e) })
	t.Run("rotation drops no call", func(t *testing.T) { workloadRotation(t, e, ttl) })
}

func workloadCalls(t *testing.T, e *Env) {
	code, body := e.Get(t, "front", "/call?target=back&path=/")
	if code != 200 || !strings.HasPrefix(body, "200 ") || !strings.Contains(body, "Hello from noops") {
		t.Errorf("front → back through the gateway: %d %q, want back's page", code, body)
	}
	code, body = e.Get(t, "front", "/call?target=sealed&path=/")
	if code != 200 || !strings.HasPrefix(body, "403 ") || !strings.Contains(body, "no policy") {
		t.Errorf("front → sealed: %d %q, want 403 from the gateway", code, body)
	}
	code, body = e.Get(t, "front", "/serial")
	if code != 200 || !strings.Contains(body, "spiffe://"+e.Domain+"/app/front") {
		t.Errorf("front's SVID: %d %q, want spiffe://%s/app/front", code, body, e.Domain)
	}
}

// workloadRotation makes a bounded loop of calls across three rotations:
// none may fail.
func workloadRotation(t *testing.T, e *Env, ttl time.Duration) {
	_, first := e.Get(t, "front", "/serial")
	serials := map[string]bool{first: true}
	deadline := time.Now().Add(3 * ttl)
	calls, failures := 0, 0
	for time.Now().Before(deadline) && calls < 2000 {
		code, body := e.Get(t, "front", "/call?target=back&path=/healthz")
		calls++
		if code != 200 || !strings.HasPrefix(body, "200 ") {
			failures++
			t.Logf("call %d: %d %q", calls, code, body)
		}
		if calls%10 == 0 {
			_, s := e.Get(t, "front", "/serial")
			serials[s] = true
		}
	}
	if failures > 0 {
		t.Errorf("%d of %d calls failed while the SVID rotated", failures, calls)
	}
	if len(serials) < 3 {
		t.Errorf("saw %d SVIDs in %v with a %v lifetime, want at least 3 (rotation at half-life)", len(serials), 3*ttl, ttl)
	}
	t.Logf("%d calls, %d SVIDs", calls, len(serials))
}

// sandboxIsolation checks that a sandbox cannot open a connection to
// another sandbox's address nor to a service of the host, only call them
// through the gateway.
func sandboxIsolation(t *testing.T, e *Env) {
	ps, err := e.Client.Ps(context.Background(), "back")
	if err != nil || len(ps) == 0 {
		t.Fatalf("ps back: %v %v", ps, err)
	}
	addr, err := netip.ParseAddrPort(ps[0].Addr)
	if err != nil {
		t.Fatalf("back's address %q: %v", ps[0].Addr, err)
	}
	code, body := e.Get(t, "front", "/dial?addr="+addr.String())
	if code != 200 || !strings.HasPrefix(body, "refused") {
		t.Errorf("front dialling back's sandbox %s directly: %d %q, want refused", addr, code, body)
	}
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	bridge := netip.MustParsePrefix(e.cfg.Subnet).Masked().Addr().Next()
	hostSvc := netip.AddrPortFrom(bridge, uint16(ln.Addr().(*net.TCPAddr).Port))
	code, body = e.Get(t, "front", "/dial?addr="+hostSvc.String())
	if code != 200 || !strings.HasPrefix(body, "refused") {
		t.Errorf("front dialling the host's %s: %d %q, want refused", hostSvc, code, body)
	}
	// The gateway (the host) still reaches back, and front through it.
	if code, _ := e.Get(t, "front", "/call?target=back&path=/healthz"); code != 200 {
		t.Errorf("front → back through the gateway: %d, want 200", code)
	}
}
