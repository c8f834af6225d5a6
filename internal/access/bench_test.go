package access_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"noops/internal/spec"
)

// BenchmarkAdmitDevice is the access layer's work for one keep-alive
// request with a device certificate to an app with a Cedar policy: what
// bench/access.sh measures end to end.
func BenchmarkAdmitDevice(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t)
	chain := f.device(b)
	f.setApp(t, "app", spec.Access{Policy: "app.cedar", MinTrust: 20},
		`permit (principal in Role::"admin", action == Action::"GET", resource) when { context.trust >= 20 };
forbid (principal, action == Action::"DELETE", resource);`)
	r := httptest.NewRequest("GET", "https://app.example.test/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: chain}
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
