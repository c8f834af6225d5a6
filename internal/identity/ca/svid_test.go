package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/url"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestIssueSVID(t *testing.T) {
	c, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := url.Parse("spiffe://example.test/user/alice/device/d1")
	leafDER, interDER, err := c.IssueSVID(SVID{ID: id, Key: &key.PublicKey, TTL: time.Hour})
	if err != nil {
		t.Fatalf("IssueSVID: %v", err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(interDER)
	pool := x509.NewCertPool()
	pool.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.RootPool(), Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the SVID does not verify as a client certificate: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.RootPool(), Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a device SVID verifies as a server certificate")
	}
	if got := SPIFFEID(leaf); got == nil || got.String() != id.String() {
		t.Errorf("SPIFFEID = %v, want %v", got, id)
	}
	if leaf.Subject.CommonName != "d1" {
		t.Errorf("CommonName = %q, want d1", leaf.Subject.CommonName)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > time.Hour+2*time.Minute {
		t.Errorf("lifetime %v, want about 1h", d)
	}

	wl, _ := url.Parse("spiffe://example.test/app/billing")
	leafDER, _, err = c.IssueSVID(SVID{ID: wl, Key: &key.PublicKey, TTL: time.Hour, Server: true, DNSNames: []string{"billing.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(leafDER)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.RootPool(), Intermediates: pool, DNSName: "billing.internal", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("a workload SVID does not verify as a server certificate: %v", err)
	}
}

func TestIssueSVIDRefuses(t *testing.T) {
	c, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct{ name, id string }{
		{"https scheme", "https://example.test/a"},
		{"no path", "spiffe://example.test"},
		{"slash path", "spiffe://example.test/"},
		{"query", "spiffe://example.test/a?x=1"},
		{"port", "spiffe://example.test:8/a"},
		{"empty segment", "spiffe://example.test/a//b"},
		{"upper-case domain", "spiffe://Example.test/a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse(tc.id)
			if _, _, err := c.IssueSVID(SVID{ID: u, Key: &key.PublicKey, TTL: time.Hour}); !errkind.Is(err, errkind.Invalid) {
				t.Errorf("IssueSVID(%q) = %v, want an Invalid error", tc.id, err)
			}
		})
	}
}
