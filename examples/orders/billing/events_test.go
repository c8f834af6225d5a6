package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA issues certificates for the fake gateway and the fake sandbox.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and PKCS#8 key in one PEM, as svid.pem is.
func (ca *testCA) issue(t *testing.T, cn string, server bool) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.DNSNames, tmpl.ExtKeyUsage = []string{cn}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)
}

// fakeGateway is the platform's events endpoint: it wants a client
// certificate from ca and records who published what.
type fakeGateway struct {
	mu       sync.Mutex
	callers  []string
	requests []*http.Request
	bodies   []string
}

func startGateway(t *testing.T, ca *testCA, g *fakeGateway, status int) *httptest.Server {
	t.Helper()
	pair := ca.issue(t, "gateway.internal", true)
	cert, err := tls.X509KeyPair(pair, pair)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.callers = append(g.callers, r.TLS.PeerCertificates[0].Subject.CommonName)
		g.requests, g.bodies = append(g.requests, r), append(g.bodies, string(body))
		g.mu.Unlock()
		if status != http.StatusAccepted {
			http.Error(w, "topic not in events.publish", status)
			return
		}
		topic := strings.TrimPrefix(r.URL.Path, "/.noops/events/")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"id": "evt-42", "topic": topic})
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func writeIdentity(t *testing.T, dir string, svid, bundle []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "svid.pem"), svid, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle.pem"), bundle, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPublishMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	g := &fakeGateway{}
	srv := startGateway(t, ca, g, http.StatusAccepted)
	dir := t.TempDir()
	writeIdentity(t, dir, ca.issue(t, "sandbox-1", false), ca.pem)
	now := time.Now()
	id := &identity{dir: dir, now: func() time.Time { return now }}
	p := &publisher{url: srv.URL + "/.noops/events/", client: mtlsClient(id, "gateway.internal")}
	send := func() string {
		t.Helper()
		got, err := p.publish(context.Background(), outEvent{Topic: "orders.created", Type: "com.example.order.created",
			PartitionKey: "k1", TraceParent: testTrace, ContentType: "application/json", Data: []byte(`{"a":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		p.client.CloseIdleConnections() // the next publish makes a new connection
		return got
	}
	if got := send(); got != "evt-42" {
		t.Fatalf("id %q", got)
	}
	r := g.requests[0]
	if r.Method != "POST" || r.URL.Path != "/.noops/events/orders.created" || g.bodies[0] != `{"a":1}` ||
		r.Header.Get("Content-Type") != "application/json" || r.Header.Get("ce-type") != "com.example.order.created" ||
		r.Header.Get("ce-partitionkey") != "k1" || r.Header.Get("traceparent") != testTrace || r.Header.Get("ce-id") != "" {
		t.Fatalf("request %s %s %q %v", r.Method, r.URL.Path, g.bodies[0], r.Header)
	}

	// The certificate rotates: a new connection within a minute still
	// uses the cached one, after a minute the new one.
	writeIdentity(t, dir, ca.issue(t, "sandbox-2", false), ca.pem)
	send()
	now = now.Add(identityTTL + time.Second)
	send()
	if want := []string{"sandbox-1", "sandbox-1", "sandbox-2"}; strings.Join(g.callers, ",") != strings.Join(want, ",") {
		t.Fatalf("callers %v, want %v", g.callers, want)
	}
}

func TestPublishFailures(t *testing.T) {
	ca := newTestCA(t)
	refusing := startGateway(t, ca, &fakeGateway{}, http.StatusForbidden)
	dir := t.TempDir()
	writeIdentity(t, dir, ca.issue(t, "sandbox-1", false), ca.pem)
	p := &publisher{url: refusing.URL + "/.noops/events", client: mtlsClient(&identity{dir: dir, now: time.Now}, "gateway.internal")}
	if _, err := p.publish(context.Background(), outEvent{Topic: "orders.created"}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("refused: err %v", err)
	}

	// A gateway whose certificate is not from the bundle's CA.
	other := t.TempDir()
	writeIdentity(t, other, ca.issue(t, "sandbox-1", false), newTestCA(t).pem)
	p.client = mtlsClient(&identity{dir: other, now: time.Now}, "gateway.internal")
	if _, err := p.publish(context.Background(), outEvent{Topic: "orders.created"}); err == nil {
		t.Fatal("published to an untrusted gateway")
	}

	// No identity files at all.
	p.client = mtlsClient(&identity{dir: t.TempDir(), now: time.Now}, "gateway.internal")
	if _, err := p.publish(context.Background(), outEvent{Topic: "orders.created"}); err == nil || !strings.Contains(err.Error(), "svid.pem") {
		t.Fatalf("no identity: err %v", err)
	}
}

func TestPublishWithoutURLLogs(t *testing.T) {
	t.Setenv("NOOPS_EVENTS_URL", "")
	p, err := newPublisher()
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.publish(context.Background(), outEvent{Topic: "orders.created", Data: []byte("{}")})
	if err != nil || !strings.HasPrefix(id, "local-") {
		t.Fatalf("id %q, err %v", id, err)
	}
	t.Setenv("NOOPS_EVENTS_URL", "https://10.88.0.1:15443/.noops/events")
	t.Setenv("NOOPS_IDENTITY_DIR", "")
	if _, err := newPublisher(); err == nil {
		t.Fatal("NOOPS_EVENTS_URL without NOOPS_IDENTITY_DIR was accepted")
	}
}

func TestTraceID(t *testing.T) {
	for tp, want := range map[string]string{
		testTrace: "4bf92f3577b34da6a3ce929d0e0e4736",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later": "4bf92f3577b34da6a3ce929d0e0e4736",
		"": "", "garbage": "",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":       "",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":       "",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":       "",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       "",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01":       "",
	} {
		if got := traceID(tp); got != want {
			t.Errorf("traceID(%q) = %q, want %q", tp, got, want)
		}
	}
}
