package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestIssueServer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		names     []string
		ttl       time.Duration
		wantErr   bool
		wantDNS   []string
		wantIPs   []string
		verifyFor string
		wantEnd   func(c *CA) time.Time
	}{
		{
			name: "names and addresses", names: []string{"Svc.Internal", "10.0.0.1", "::1"}, ttl: time.Hour,
			wantDNS: []string{"svc.internal"}, wantIPs: []string{"10.0.0.1", "::1"}, verifyFor: "svc.internal",
		},
		{name: "address only", names: []string{"10.0.0.1"}, ttl: time.Hour, wantIPs: []string{"10.0.0.1"}, verifyFor: "10.0.0.1"},
		{name: "wildcard", names: []string{"*.apps.test"}, ttl: time.Hour, wantDNS: []string{"*.apps.test"}, verifyFor: "x.apps.test"},
		{
			name: "lifetime cut to the intermediate", names: []string{"svc.internal"}, ttl: 2 * 365 * day,
			wantDNS: []string{"svc.internal"}, verifyFor: "svc.internal",
			wantEnd: func(c *CA) time.Time { return c.Intermediate().NotAfter },
		},
		{name: "no names", ttl: time.Hour, wantErr: true},
		{name: "space in name", names: []string{"a b.test"}, ttl: time.Hour, wantErr: true},
		{name: "wildcard in the middle", names: []string{"a.*.test"}, ttl: time.Hour, wantErr: true},
		{name: "zero lifetime", names: []string{"svc.internal"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newCA(t)
			cert, err := c.IssueServer(tc.names, tc.ttl)
			if tc.wantErr {
				if !errkind.Is(err, errkind.Invalid) {
					t.Fatalf("IssueServer(%q, %v) = %v, want an invalid error", tc.names, tc.ttl, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("IssueServer(%q, %v) = %v", tc.names, tc.ttl, err)
			}
			verify(t, c, cert, tc.verifyFor, clk.Now(), x509.ExtKeyUsageServerAuth)
			var ips []string
			for _, ip := range cert.Leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(cert.Leaf.DNSNames, tc.wantDNS) || !slices.Equal(ips, tc.wantIPs) {
				t.Errorf("names = %q %q, want %q %q", cert.Leaf.DNSNames, ips, tc.wantDNS, tc.wantIPs)
			}
			wantEnd := clk.Now().Add(tc.ttl)
			if tc.wantEnd != nil {
				wantEnd = tc.wantEnd(c)
			}
			if !cert.Leaf.NotAfter.Equal(wantEnd) {
				t.Errorf("NotAfter = %v, want %v", cert.Leaf.NotAfter, wantEnd)
			}
		})
	}
}

func TestIssueClient(t *testing.T) {
	t.Parallel()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224Key, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	shortRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := []struct {
		name    string
		cn      string
		ttl     time.Duration
		pub     crypto.PublicKey
		wantErr bool
	}{
		{name: "ECDSA P-256", cn: "device-1", ttl: 24 * time.Hour, pub: &ecKey.PublicKey},
		{name: "Ed25519", cn: "device-2", ttl: 24 * time.Hour, pub: edPub},
		{name: "RSA 2048", cn: "workload/web", ttl: time.Hour, pub: &rsaKey.PublicKey},
		{name: "RSA 1024", cn: "device-3", ttl: time.Hour, pub: &shortRSA.PublicKey, wantErr: true},
		{name: "P-224", cn: "device-4", ttl: time.Hour, pub: &p224Key.PublicKey, wantErr: true},
		{name: "no key", cn: "device-5", ttl: time.Hour, pub: nil, wantErr: true},
		{name: "nil ECDSA key", cn: "device-5", ttl: time.Hour, pub: (*ecdsa.PublicKey)(nil), wantErr: true},
		{name: "empty name", cn: " ", ttl: time.Hour, pub: &ecKey.PublicKey, wantErr: true},
		{name: "name too long", cn: string(make([]byte, 65)), ttl: time.Hour, pub: &ecKey.PublicKey, wantErr: true},
		{name: "zero lifetime", cn: "device-6", pub: &ecKey.PublicKey, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newCA(t)
			der, err := c.IssueClient(tc.cn, tc.ttl, tc.pub)
			if tc.wantErr {
				if !errkind.Is(err, errkind.Invalid) {
					t.Fatalf("IssueClient(%q) = %v, want an invalid error", tc.cn, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("IssueClient(%q) = %v", tc.cn, err)
			}
			cert := &tls.Certificate{Certificate: [][]byte{der, c.Intermediate().Raw}}
			verify(t, c, cert, "", clk.Now(), x509.ExtKeyUsageClientAuth)
			leaf, _ := x509.ParseCertificate(der)
			if leaf.Subject.CommonName != tc.cn {
				t.Errorf("CommonName = %q, want %q", leaf.Subject.CommonName, tc.cn)
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
				t.Errorf("ExtKeyUsage = %v, want clientAuth only", leaf.ExtKeyUsage)
			}
			if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
				t.Errorf("certificate is for another key")
			}
			if !leaf.NotAfter.Equal(clk.Now().Add(tc.ttl)) {
				t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, clk.Now().Add(tc.ttl))
			}
		})
	}
}

func TestValidHost(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return string(slices.Repeat([]byte("a"), n)) }
	cases := []struct {
		name string
		host string
		want bool
	}{
		{"simple", "app.example.test", true},
		{"single label", "localhost", true},
		{"digits and hyphens", "a-1.b2-c.test", true},
		{"63-byte label", long(63) + ".test", true},
		{"64-byte label", long(64) + ".test", false},
		{"253 bytes", long(63) + "." + long(63) + "." + long(63) + "." + long(61), true},
		{"254 bytes", long(63) + "." + long(63) + "." + long(63) + "." + long(62), false},
		{"empty", "", false},
		{"leading dot", ".a.test", false},
		{"trailing dot", "a.test.", false},
		{"double dot", "a..test", false},
		{"label ends in hyphen", "a-.test", false},
		{"name ends in hyphen", "a.test-", false},
		{"upper case", "A.test", false},
		{"IP-like is a name", "10.0.0.1", true},
		{"colon", "a:443", false},
		{"non-ASCII", "bücher.test", false},
	}
	for _, tc := range cases {
		if got := validHost(tc.host); got != tc.want {
			t.Errorf("%s: validHost(%q) = %v, want %v", tc.name, tc.host, got, tc.want)
		}
	}
}
