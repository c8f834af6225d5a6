package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"noops/internal/errkind"
)

// allowOnly allows exactly the given names.
func allowOnly(names ...string) func(string) bool {
	return func(h string) bool { return slices.Contains(names, h) }
}

func TestGetCertificateRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		serverName string
		allow      func(string) bool
		callAllow  bool
		want       errkind.Kind
		wantIn     string // in the message
	}{
		{name: "no server name", serverName: "", allow: func(string) bool { return true }, callAllow: true, want: errkind.Invalid, wantIn: "SNI"},
		{name: "host not served", serverName: "random-1234.example.test", allow: allowOnly("app.example.test"), callAllow: true, want: errkind.Permission},
		{name: "Allow never called", serverName: "app.example.test", want: errkind.Permission},
		{name: "Allow(nil)", serverName: "app.example.test", callAllow: true, want: errkind.Permission},
		{name: "empty label", serverName: "app..test", allow: func(string) bool { return true }, callAllow: true, want: errkind.Invalid},
		{name: "underscore", serverName: "a_b.test", allow: func(string) bool { return true }, callAllow: true, want: errkind.Invalid},
		{name: "leading hyphen", serverName: "-app.test", allow: func(string) bool { return true }, callAllow: true, want: errkind.Invalid},
		{name: "wildcard", serverName: "*.test", allow: func(string) bool { return true }, callAllow: true, want: errkind.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, _ := newCA(t)
			if tc.callAllow {
				c.Allow(tc.allow)
			}
			cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: tc.serverName})
			if err == nil || cert != nil {
				t.Fatalf("GetCertificate(%q) = %v, %v, want an error", tc.serverName, cert, err)
			}
			if got := errkind.Of(err); got != tc.want {
				t.Errorf("GetCertificate(%q) error kind = %v (%v), want %v", tc.serverName, got, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("GetCertificate(%q) = %q, want it to mention %q", tc.serverName, err, tc.wantIn)
			}
			if n := c.issued.Load(); n != 0 || len(c.leaves) != 0 {
				t.Errorf("refused hello minted %d certificates, cached %d", n, len(c.leaves))
			}
		})
	}
}

func TestGetCertificateIssuesVerifiableLeaf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		serverName string
		want       string
	}{
		{name: "plain", serverName: "app.example.test", want: "app.example.test"},
		{name: "upper case and trailing dot", serverName: "App.Example.TEST.", want: "app.example.test"},
		{name: "single label", serverName: "localhost", want: "localhost"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newCA(t)
			var asked []string
			var mu sync.Mutex
			c.Allow(func(h string) bool {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, h)
				return h == tc.want
			})
			cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: tc.serverName})
			if err != nil {
				t.Fatalf("GetCertificate(%q) = %v", tc.serverName, err)
			}
			if !slices.Equal(asked, []string{tc.want}) {
				t.Errorf("allow was asked %q, want [%q]", asked, tc.want)
			}
			verify(t, c, cert, tc.want, clk.Now(), x509.ExtKeyUsageServerAuth)

			if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], c.Intermediate().Raw) {
				t.Fatalf("chain has %d certificates, want the leaf and the intermediate", len(cert.Certificate))
			}
			l := cert.Leaf
			if l == nil || !bytes.Equal(l.Raw, cert.Certificate[0]) {
				t.Fatalf("Leaf = %v, want the parsed first certificate", l)
			}
			if !slices.Equal(l.DNSNames, []string{tc.want}) || len(l.IPAddresses) != 0 {
				t.Errorf("leaf names = %q %v, want [%q]", l.DNSNames, l.IPAddresses, tc.want)
			}
			if !l.NotBefore.Equal(t0.Add(-time.Minute)) || !l.NotAfter.Equal(t0.Add(7*day)) {
				t.Errorf("leaf valid %v to %v, want %v to %v", l.NotBefore, l.NotAfter, t0.Add(-time.Minute), t0.Add(7*day))
			}
			if !slices.Equal(l.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || l.IsCA {
				t.Errorf("leaf ExtKeyUsage = %v IsCA = %v, want serverAuth only", l.ExtKeyUsage, l.IsCA)
			}
			key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
			if !ok || key.Curve != elliptic.P256() || !key.PublicKey.Equal(l.PublicKey) {
				t.Errorf("private key %T does not match the leaf's P-256 key", cert.PrivateKey)
			}
		})
	}
}

func TestGetCertificateCachesUntilRenewal(t *testing.T) {
	t.Parallel()
	// A leaf lives 7 days and 1 minute; it is renewed when a third of that,
	// 2d8h0m20s, remains: at t0 + 4d15h59m40s.
	cases := []struct {
		name    string
		advance time.Duration
		wantNew bool
	}{
		{name: "same instant", advance: 0},
		{name: "four days later", advance: 4 * day},
		{name: "just before renewal", advance: 4*day + 15*time.Hour + 59*time.Minute + 39*time.Second},
		{name: "at renewal", advance: 4*day + 15*time.Hour + 59*time.Minute + 40*time.Second, wantNew: true},
		{name: "after expiry", advance: 8 * day, wantNew: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newCA(t)
			c.Allow(allowOnly("app.test"))
			hello := &tls.ClientHelloInfo{ServerName: "app.test"}
			first, err := c.GetCertificate(hello)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(tc.advance)
			second, err := c.GetCertificate(hello)
			if err != nil {
				t.Fatal(err)
			}
			if got := second != first; got != tc.wantNew {
				t.Fatalf("new certificate after %v = %v, want %v", tc.advance, got, tc.wantNew)
			}
			if tc.wantNew {
				verify(t, c, second, "app.test", clk.Now(), x509.ExtKeyUsageServerAuth)
				if !second.Leaf.NotBefore.Equal(clk.Now().Add(-time.Minute)) {
					t.Errorf("renewed leaf NotBefore = %v, want %v", second.Leaf.NotBefore, clk.Now().Add(-time.Minute))
				}
			}
			third, _ := c.GetCertificate(hello)
			if third != second {
				t.Errorf("the certificate after renewal is not cached")
			}
			if want := int64(1 + btoi(tc.wantNew)); c.issued.Load() != want {
				t.Errorf("issued %d certificates, want %d", c.issued.Load(), want)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestGetCertificateIssuesOnceForConcurrentHellos(t *testing.T) {
	t.Parallel()
	c, _, _ := newCA(t)
	const n = 64
	var asked atomic.Int32
	allAsked := make(chan struct{})
	c.Allow(func(h string) bool {
		if asked.Add(1) == n {
			close(allAsked)
		}
		return h == "app.test"
	})

	// Holding the intermediate stalls the first issuance, so that every other
	// hello arrives while it is in progress.
	c.imu.Lock()
	certs := make([]*tls.Certificate, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			certs[i], errs[i] = c.GetCertificate(&tls.ClientHelloInfo{ServerName: "app.test"})
		})
	}
	select {
	case <-allAsked:
		time.Sleep(20 * time.Millisecond) // let them reach the cache; passing never depends on it
	case <-time.After(10 * time.Second):
		t.Errorf("only %d of %d hellos asked the allow function", asked.Load(), n)
	}
	c.imu.Unlock()
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("GetCertificate #%d = %v", i, errs[i])
		}
		if certs[i] != certs[0] {
			t.Fatalf("GetCertificate #%d returned a different certificate than #0", i)
		}
	}
	if got := c.issued.Load(); got != 1 {
		t.Errorf("%d concurrent hellos issued %d certificates, want 1", n, got)
	}
}

func TestGetCertificateCacheIsBounded(t *testing.T) {
	t.Parallel()
	c, clk, _ := newCA(t)
	c.maxLeaves = 3
	c.Allow(func(string) bool { return true })
	get := func(name string) {
		t.Helper()
		if _, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: name}); err != nil {
			t.Fatal(err)
		}
	}
	cached := func() []string {
		var names []string
		for n := range c.leaves {
			names = append(names, n)
		}
		slices.Sort(names)
		return names
	}

	get("a.test")
	clk.Advance(time.Hour)
	get("b.test")
	get("c.test")
	get("d.test") // full: a.test expires soonest and goes
	if got, want := cached(), []string{"b.test", "c.test", "d.test"}; !slices.Equal(got, want) {
		t.Errorf("cache after a fourth name = %q, want %q", got, want)
	}
	clk.Advance(8 * day) // all expired
	get("e.test")
	if got, want := cached(), []string{"e.test"}; !slices.Equal(got, want) {
		t.Errorf("cache after expiry = %q, want %q", got, want)
	}
}

func TestGetCertificateRotatesIntermediate(t *testing.T) {
	t.Parallel()
	c, clk, dir := newCA(t)
	c.Allow(allowOnly("app.test"))
	old := c.Intermediate()
	clk.Advance(340 * day)

	cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "app.test"})
	if err != nil {
		t.Fatal(err)
	}
	inter := c.Intermediate()
	if inter.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatalf("intermediate not rotated 25 days before it expires")
	}
	if !bytes.Equal(cert.Certificate[1], inter.Raw) {
		t.Errorf("leaf chain does not carry the new intermediate")
	}
	verify(t, c, cert, "app.test", clk.Now(), x509.ExtKeyUsageServerAuth)
	onDisk, err := os.ReadFile(filepath.Join(dir, intermediateCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(onDisk, []byte("CERTIFICATE")) || openCA(t, dir, clk.Now).Intermediate().SerialNumber.Cmp(inter.SerialNumber) != 0 {
		t.Errorf("the rotated intermediate was not saved in %s", dir)
	}
}

func BenchmarkGetCertificateCached(b *testing.B) {
	c, _, _ := newCA(b)
	c.Allow(allowOnly("app.example.test"))
	hello := &tls.ClientHelloInfo{ServerName: "app.example.test"}
	if _, err := c.GetCertificate(hello); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetCertificate(hello); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGetCertificateFallsBackToWildcard(t *testing.T) {
	c, clk, _ := newCA(t)
	c.Allow(func(h string) bool { return h == "app.example.test" })
	hello := func(name string) *tls.ClientHelloInfo { return &tls.ClientHelloInfo{ServerName: name} }
	if _, err := c.GetCertificate(hello("gone.example.test")); err == nil {
		t.Fatal("GetCertificate(gone) without a fallback succeeded, want refusal")
	}
	c.Fallback("example.test")
	tests := []struct {
		name, host, wantSAN string
		ok                  bool
	}{
		{"served host gets its own", "app.example.test", "app.example.test", true},
		{"unserved app gets the wildcard", "gone.example.test", "*.example.test", true},
		{"another unserved app shares it", "other.example.test", "*.example.test", true},
		{"two labels deep is refused", "a.b.example.test", "", false},
		{"another domain is refused", "gone.elsewhere.test", "", false},
		{"the bare domain is refused", "example.test", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := c.GetCertificate(hello(tc.host))
			if !tc.ok {
				if err == nil {
					t.Fatalf("GetCertificate(%q) = %v, want refusal", tc.host, cert.Leaf.DNSNames)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetCertificate(%q) = %v", tc.host, err)
			}
			if got := cert.Leaf.DNSNames; len(got) != 1 || got[0] != tc.wantSAN {
				t.Errorf("GetCertificate(%q) SANs = %v, want [%s]", tc.host, got, tc.wantSAN)
			}
			verify(t, c, cert, tc.host, clk.Now(), x509.ExtKeyUsageServerAuth)
		})
	}
	a, _ := c.GetCertificate(hello("x1.example.test"))
	b, _ := c.GetCertificate(hello("x2.example.test"))
	if a != b {
		t.Error("unserved hosts got different certificates, want the one cached wildcard")
	}

	// Under a one-label domain a wildcard would be refused by clients, so
	// the name gets its own certificate.
	c.Fallback("localhost")
	cert, err := c.GetCertificate(hello("gone.localhost"))
	if err != nil {
		t.Fatalf("GetCertificate(gone.localhost) = %v", err)
	}
	if got := cert.Leaf.DNSNames; len(got) != 1 || got[0] != "gone.localhost" {
		t.Errorf("GetCertificate(gone.localhost) SANs = %v, want [gone.localhost]", got)
	}
	if _, err := c.GetCertificate(hello("a.b.localhost")); err == nil {
		t.Error("GetCertificate(a.b.localhost) succeeded, want refusal")
	}
}
