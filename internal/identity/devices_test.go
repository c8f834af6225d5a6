package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/identity"
	"noops/internal/identity/ca"
)

// enroll signs name in (with code, when given) and enrolls a device with key.
func (e *env) enroll(t *testing.T, name, code string, key crypto.Signer) identity.Certificate {
	t.Helper()
	a := e.signIn(t, name, code)
	c, err := e.svc.Enroll(context.Background(), a, "laptop", csr(t, key))
	if err != nil {
		t.Fatalf("Enroll(%s, laptop) = %v", name, err)
	}
	return c
}

// svid has the env's CA issue a device certificate for id and key
// directly, as if the service had.
func (e *env) svid(t *testing.T, issuer *ca.CA, id string, key crypto.PublicKey) []*x509.Certificate {
	t.Helper()
	u, err := url.Parse(id)
	if err != nil {
		t.Fatalf("url.Parse(%q) = %v", id, err)
	}
	leaf, inter, err := issuer.IssueSVID(ca.SVID{ID: u, Key: key, TTL: time.Hour})
	if err != nil {
		t.Fatalf("IssueSVID(%s) = %v", id, err)
	}
	return parseChain(t, leaf, inter)
}

func TestEnroll(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Hour
	e := newEnv(t, identity.Config{DeviceCertTTL: ttl})
	e.addUser(t, "alice")
	key := newP256(t)
	c := e.enroll(t, "alice", "", key)

	wantID := "spiffe://" + domain + "/user/alice/device/" + c.Device.ID
	if c.ID != wantID || c.Device.User != "alice" || c.Device.Name != "laptop" || c.Device.ID == "" {
		t.Errorf("Enroll(alice, laptop) = ID %q, device %+v; want ID %q of alice's laptop", c.ID, c.Device, wantID)
	}
	certs := chain(t, c)
	leaf := certs[0]
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: e.ca.RootPool(), Intermediates: inter, CurrentTime: e.clk.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the device certificate does not verify against the CA root: %v", err)
	}
	if id := ca.SPIFFEID(leaf); id == nil || id.String() != wantID {
		t.Errorf("the device certificate's SPIFFE ID = %v, want %s", id, wantID)
	}
	if !leaf.NotAfter.Equal(t0.Add(ttl)) || !c.Expiry.Equal(t0.Add(ttl)) {
		t.Errorf("the device certificate expires at %v (Expiry %v), want %v", leaf.NotAfter, c.Expiry, t0.Add(ttl))
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	if c.Device.KeyHash != hex.EncodeToString(sum[:]) {
		t.Errorf("device KeyHash = %s, want the SHA-256 of the key %x", c.Device.KeyHash, sum)
	}
	if c.Device.CertSerial != leaf.SerialNumber.Text(16) || !c.Device.CertExpires.Equal(leaf.NotAfter) {
		t.Errorf("device records serial %s expiring %v, want %s expiring %v", c.Device.CertSerial, c.Device.CertExpires, leaf.SerialNumber.Text(16), leaf.NotAfter)
	}
	devs, err := e.svc.Devices(context.Background(), "alice")
	if err != nil || len(devs) != 1 || devs[0].ID != c.Device.ID {
		t.Errorf("Devices(alice) = %v, %v; want the one device %s", devs, err, c.Device.ID)
	}

	// A second device gets its own ID.
	c2 := e.enroll(t, "alice", "", newP256(t))
	if c2.Device.ID == c.Device.ID {
		t.Errorf("two enrolments gave the same device ID %s", c.Device.ID)
	}
}

// TestEnrollNeedsEveryFactor checks that a user with TOTP enrolls a
// device only after a sign-in with a code.
func TestEnrollNeedsEveryFactor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	secret := e.enrollTOTP(t, "alice")
	ctx := context.Background()
	u, err := e.svc.User(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a := identity.Auth{User: u, Factors: []string{identity.FactorPassword}, Time: e.clk.Now()}
	_, err = e.svc.Enroll(ctx, a, "laptop", csr(t, newP256(t)))
	checkErr(t, "Enroll(alice) after a password-only sign-in", err, errkind.Unauthenticated)
	if !errors.Is(err, identity.ErrCodeNeeded) {
		t.Errorf("Enroll(alice) after a password-only sign-in = %v, want ErrCodeNeeded", err)
	}
	if devs, _ := e.svc.Devices(ctx, "alice"); len(devs) != 0 {
		t.Errorf("after a refused enrolment Devices(alice) = %v, want none", devs)
	}
	e.clk.Advance(30 * time.Second)
	e.enroll(t, "alice", code(t, secret, e.clk.Now()), newP256(t))
}

func TestEnrollRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	a := e.signIn(t, "alice", "")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	broken := csr(t, newP256(t))
	broken[len(broken)-1] ^= 0xff // the last byte of the signature
	good := csr(t, newP256(t))

	tests := []struct {
		name   string
		device string
		csr    []byte
		msg    string
	}{
		{"RSA key", "laptop", csr(t, rsaKey), "must be ECDSA P-256, not RSA"},
		{"P-384 key", "laptop", csr(t, p384), "must be ECDSA P-256, not ECDSA P-384"},
		{"Ed25519 key", "laptop", csr(t, edKey), "must be ECDSA P-256, not Ed25519"},
		{"broken signature", "laptop", broken, "not signed by its key"},
		{"not a request", "laptop", []byte("hello"), "reading the certificate request"},
		{"empty request", "laptop", nil, "reading the certificate request"},
		{"truncated request", "laptop", good[:len(good)/2], "reading the certificate request"},
		{"empty device name", "", good, "device name"},
		{"device name with a slash", "lap/top", good, "device name"},
		{"device name with a space", "my laptop", good, "device name"},
		{"device name too long", strings.Repeat("a", 64), good, "device name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := e.svc.Enroll(context.Background(), a, tc.device, tc.csr)
			checkErr(t, "Enroll(alice, "+tc.device+")", err, errkind.Invalid, tc.msg)
			if c.Leaf != nil {
				t.Errorf("Enroll(alice, %q) refused but returned a certificate", tc.device)
			}
		})
	}
	t.Cleanup(func() {
		if devs, _ := e.svc.Devices(context.Background(), "alice"); len(devs) != 0 {
			t.Errorf("after refused enrolments Devices(alice) = %v, want none", devs)
		}
	})
}

func TestVerifyDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice", "admin")
	c := e.enroll(t, "alice", "", newP256(t))
	for i := range 2 { // the second time from the cache
		id, err := e.svc.VerifyDevice(context.Background(), chain(t, c))
		if err != nil {
			t.Fatalf("VerifyDevice(alice's laptop) #%d = %v, want success", i+1, err)
		}
		if id.ID != c.ID || id.Device.ID != c.Device.ID || id.User.Name != "alice" || id.User.Roles[0] != "admin" || !id.Expires.Equal(c.Expiry) {
			t.Errorf("VerifyDevice(alice's laptop) #%d = %+v, want device %s of alice expiring %v", i+1, id, c.Device.ID, c.Expiry)
		}
	}
}

// TestVerifyDeviceRefuses checks certificates that are no good in
// themselves: all Unauthenticated.
func TestVerifyDeviceRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	e.addUser(t, "bob")
	key1, key2 := newP256(t), newP256(t)
	c := e.enroll(t, "alice", "", key1)
	dev := c.Device.ID
	foreign, err := ca.Open(t.TempDir(), e.clk.Now)
	if err != nil {
		t.Fatalf("ca.Open(foreign) = %v", err)
	}
	server, err := e.ca.IssueServer([]string{"laptop.example.test"}, time.Hour)
	if err != nil {
		t.Fatalf("IssueServer = %v", err)
	}
	prefix := "spiffe://" + domain + "/user/"

	tests := []struct {
		name  string
		chain []*x509.Certificate
		msg   string
	}{
		{"no certificate", nil, "no client certificate"},
		{"foreign CA", e.svid(t, foreign, c.ID, &key1.PublicKey), "not one of this platform's"},
		{"leaf without its intermediate", chain(t, c)[:1], "not one of this platform's"},
		{"foreign CA with our intermediate", append(e.svid(t, foreign, c.ID, &key1.PublicKey)[:1], chain(t, c)[1]), "not one of this platform's"},
		{"another device's key", e.svid(t, e.ca, c.ID, &key2.PublicKey), "another device's key"},
		{"another user's name", e.svid(t, e.ca, prefix+"bob/device/"+dev, &key1.PublicKey), "another device's key"},
		{"unregistered device", e.svid(t, e.ca, prefix+"alice/device/nosuchdevice", &key1.PublicKey), "not registered"},
		{"another trust domain", e.svid(t, e.ca, "spiffe://other.test/user/alice/device/"+dev, &key1.PublicKey), "no device identity"},
		{"a workload's identity", e.svid(t, e.ca, "spiffe://"+domain+"/app/web", &key1.PublicKey), "no device identity"},
		{"extra path segment", e.svid(t, e.ca, prefix+"alice/device/"+dev+"/x", &key1.PublicKey), "no device identity"},
		{"a server certificate", parseChain(t, server.Certificate...), "not one of this platform's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := e.svc.VerifyDevice(context.Background(), tc.chain)
			checkErr(t, "VerifyDevice("+tc.name+")", err, errkind.Unauthenticated, tc.msg)
			if err == nil {
				t.Errorf("VerifyDevice(%s) = %+v, want refused", tc.name, id)
			}
		})
	}
}

func TestVerifyDeviceExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	c := e.enroll(t, "alice", "", newP256(t))
	ctx := context.Background()
	e.clk.Advance(identity.DefaultDeviceCertTTL - time.Second)
	if _, err := e.svc.VerifyDevice(ctx, chain(t, c)); err != nil {
		t.Fatalf("VerifyDevice a second before expiry = %v, want success", err)
	}
	e.clk.Advance(2 * time.Second)
	_, err := e.svc.VerifyDevice(ctx, chain(t, c))
	checkErr(t, "VerifyDevice after expiry", err, errkind.Unauthenticated, "expired")
	if h := errkind.HintOf(err); !strings.Contains(h, "noops login") {
		t.Errorf("VerifyDevice after expiry has hint %q, want one naming noops login", h)
	}
}

// TestVerifyDeviceNoLongerTrusted checks that a good certificate is
// refused (Permission) at once when its device is revoked or its user
// disabled, although the chain was verified and cached before.
func TestVerifyDeviceNoLongerTrusted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(e *env, c identity.Certificate) error
		undo   func(e *env, c identity.Certificate) error // nil when final
		msg    string
	}{
		{
			name: "revoked",
			change: func(e *env, c identity.Certificate) error {
				_, err := e.svc.Revoke(context.Background(), c.Device.ID, "lost")
				return err
			},
			msg: "revoked",
		},
		{
			name: "user disabled",
			change: func(e *env, c identity.Certificate) error {
				_, err := e.svc.SetDisabled(context.Background(), "alice", true)
				return err
			},
			undo: func(e *env, c identity.Certificate) error {
				_, err := e.svc.SetDisabled(context.Background(), "alice", false)
				return err
			},
			msg: "disabled",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, identity.Config{})
			e.addUser(t, "alice")
			c := e.enroll(t, "alice", "", newP256(t))
			ctx := context.Background()
			if _, err := e.svc.VerifyDevice(ctx, chain(t, c)); err != nil {
				t.Fatalf("VerifyDevice before it was %s = %v, want success", tc.name, err)
			}
			if err := tc.change(e, c); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			_, err := e.svc.VerifyDevice(ctx, chain(t, c))
			checkErr(t, "VerifyDevice of a device "+tc.name, err, errkind.Permission, tc.msg)
			// And still after the caches would have expired.
			e.clk.Advance(time.Minute)
			_, err = e.svc.VerifyDevice(ctx, chain(t, c))
			checkErr(t, "VerifyDevice of a device "+tc.name+" a minute later", err, errkind.Permission, tc.msg)
			if tc.undo == nil {
				return
			}
			if err := tc.undo(e, c); err != nil {
				t.Fatalf("undoing %s: %v", tc.name, err)
			}
			if _, err := e.svc.VerifyDevice(ctx, chain(t, c)); err != nil {
				t.Errorf("VerifyDevice after undoing %s = %v, want success", tc.name, err)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	c := e.enroll(t, "alice", "", newP256(t))
	ctx := context.Background()
	d, err := e.svc.Revoke(ctx, c.Device.ID, "lost")
	if err != nil || !d.Revoked.Equal(t0) || d.RevokeReason != "lost" {
		t.Fatalf("Revoke(%s, lost) = %+v, %v; want revoked at %v for lost", c.Device.ID, d, err, t0)
	}
	e.clk.Advance(time.Hour)
	d, err = e.svc.Revoke(ctx, c.Device.ID, "again")
	if err != nil || !d.Revoked.Equal(t0) || d.RevokeReason != "lost" {
		t.Errorf("Revoke(%s) twice = %+v, %v; want the first revocation kept", c.Device.ID, d, err)
	}
	_, err = e.svc.Revoke(ctx, "nosuchdevice", "lost")
	checkErr(t, "Revoke(nosuchdevice)", err, errkind.NotFound)
}

func TestRenew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	key := newP256(t)
	c := e.enroll(t, "alice", "", key)
	ctx := context.Background()
	e.clk.Advance(30 * time.Minute)
	dev, err := e.svc.VerifyDevice(ctx, chain(t, c))
	if err != nil {
		t.Fatalf("VerifyDevice = %v", err)
	}

	r, err := e.svc.Renew(ctx, dev, csr(t, key))
	if err != nil {
		t.Fatalf("Renew(%s) with the same key = %v, want success", c.Device.ID, err)
	}
	leaf := chain(t, r)[0]
	if r.ID != c.ID || r.Device.ID != c.Device.ID || !r.Expiry.Equal(e.clk.Now().Add(identity.DefaultDeviceCertTTL)) ||
		leaf.SerialNumber.Text(16) == c.Device.CertSerial || r.Device.CertSerial != leaf.SerialNumber.Text(16) {
		t.Errorf("Renew(%s) = ID %s, device %+v, expiry %v; want a new certificate of the same device expiring %v",
			c.Device.ID, r.ID, r.Device, r.Expiry, e.clk.Now().Add(identity.DefaultDeviceCertTTL))
	}
	if _, err := e.svc.VerifyDevice(ctx, chain(t, r)); err != nil {
		t.Errorf("VerifyDevice(renewed certificate) = %v, want success", err)
	}

	_, err = e.svc.Renew(ctx, dev, csr(t, newP256(t)))
	checkErr(t, "Renew with another key", err, errkind.Permission, "another key")
	_, err = e.svc.Renew(ctx, dev, []byte("junk"))
	checkErr(t, "Renew with a broken request", err, errkind.Invalid)

	if _, err := e.svc.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Renew(ctx, dev, csr(t, key))
	checkErr(t, "Renew of a disabled user's device", err, errkind.Permission, "disabled")
	if _, err := e.svc.SetDisabled(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}

	if _, err := e.svc.Revoke(ctx, c.Device.ID, "stolen"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Renew(ctx, dev, csr(t, key))
	checkErr(t, "Renew of a revoked device", err, errkind.Permission, "revoked")
}
