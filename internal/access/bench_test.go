package access_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"noops/internal/identity"
	"noops/internal/spec"
)

// BenchmarkAdmitDevice is the access layer's work for one keep-alive
// request with a device certificate to an app with a Cedar policy: what
// bench/access.sh measures end to end.
func BenchmarkAdmitDevice(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	auth, err := f.id.Authenticate(ctx, identity.Login{User: "alice", Password: pw, Addr: "192.0.2.7"})
	if err != nil {
		b.Fatal(err)
	}
	cert, err := f.id.Enroll(ctx, auth, "laptop", csr)
	if err != nil {
		b.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Leaf)
	inter, _ := x509.ParseCertificate(cert.Chain)
	f.setApp(t, "app", spec.Access{Policy: "app.cedar", MinTrust: 20},
		`permit (principal in Role::"admin", action == Action::"GET", resource) when { context.trust >= 20 };
forbid (principal, action == Action::"DELETE", resource);`)
	r := httptest.NewRequest("GET", "https://app.example.test/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf, inter}}
	r.RemoteAddr = "192.0.2.7:5555"
	w := httptest.NewRecorder()
	if !f.acc.Admit(w, r, "app") {
		b.Fatalf("refused: %d %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Header = http.Header{}
		if !f.acc.Admit(w, r, "app") {
			b.Fatal("refused")
		}
	}
}
