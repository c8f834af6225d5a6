package ca

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const day = 24 * time.Hour

// t0 is when the tests' CAs are created.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a fake clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openCA(t testing.TB, dir string, now func() time.Time) *CA {
	t.Helper()
	c, err := Open(dir, now)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	return c
}

// newCA opens a CA in a new folder with a new fake clock.
func newCA(t testing.TB) (*CA, *clock, string) {
	t.Helper()
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "ca")
	return openCA(t, dir, clk.Now), clk, dir
}

// verify checks that cert chains to c's root at time at for usage (and for
// dnsName, when given).
func verify(t *testing.T, c *CA, cert *tls.Certificate, dnsName string, at time.Time, usage x509.ExtKeyUsage) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("parsing chain: %v", err)
		}
		inter.AddCert(ic)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatalf("parsing leaf: %v", err)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		DNSName:       dnsName,
		Roots:         c.RootPool(),
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		t.Fatalf("Verify(%q) = %v, want a chain to the root", dnsName, err)
	}
}

// snapshot returns the contents of every file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
