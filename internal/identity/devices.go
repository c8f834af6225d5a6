package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"noops/internal/errkind"
	"noops/internal/identity/ca"
	"noops/internal/store"
)

// Certificate is a device's client certificate and the chain to present
// with it.
type Certificate struct {
	Device store.Device
	Leaf   []byte // DER
	Chain  []byte // the intermediate, DER
	ID     string // the SPIFFE ID
	Expiry time.Time
}

var deviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Enroll registers a new device of a signed-in user and issues its first
// certificate. csr is a PKCS #10 request signed by the device's ECDSA
// P-256 key, which proves the device holds the key; the key never leaves
// the device. The sign-in must have proved every factor the user has.
func (s *Service) Enroll(ctx context.Context, a Auth, name string, csr []byte) (Certificate, error) {
	if !deviceName.MatchString(name) {
		return Certificate{}, errkind.Errorf(errkind.Invalid, "device name %q is not valid: 1-63 letters, digits, '.', '_' or '-'", name)
	}
	if hasTOTP(a.User) && !a.HasSecondFactor() {
		return Certificate{}, errkind.E(errkind.Unauthenticated, ErrCodeNeeded)
	}
	req, keyHash, err := parseCSR(csr)
	if err != nil {
		return Certificate{}, err
	}
	d, err := s.st.CreateDevice(ctx, store.Device{ID: newDeviceID(), User: a.User.Name, Name: name, KeyHash: keyHash, Created: s.cfg.Now(),
		Factors: a.Factors})
	if err != nil {
		return Certificate{}, err
	}
	return s.issue(ctx, d, req.PublicKey)
}

// Renew issues a new certificate to a device that presents its current,
// still valid one (verified by VerifyDevice) and a request signed by the
// same key. A revoked device, or one of a disabled user, gets none.
func (s *Service) Renew(ctx context.Context, dev DeviceIdentity, csr []byte) (Certificate, error) {
	req, keyHash, err := parseCSR(csr)
	if err != nil {
		return Certificate{}, err
	}
	d, err := s.st.GetDevice(ctx, dev.Device.ID)
	if err != nil {
		return Certificate{}, err
	}
	if err := s.trusted(ctx, d); err != nil {
		return Certificate{}, err
	}
	if keyHash != d.KeyHash {
		return Certificate{}, errkind.WithHint(errkind.Permission, fmt.Errorf("the request is signed by another key than device %s's", d.ID),
			"a device keeps its key: run noops login again to register this key as a new device")
	}
	return s.issue(ctx, d, req.PublicKey)
}

func (s *Service) issue(ctx context.Context, d store.Device, pub any) (Certificate, error) {
	id := s.deviceID(d)
	leaf, inter, err := s.cfg.Issuer.IssueSVID(ca.SVID{ID: id, Key: pub, TTL: s.cfg.DeviceCertTTL})
	if err != nil {
		return Certificate{}, fmt.Errorf("issuing the certificate of device %s: %w", d.ID, err)
	}
	cert, err := x509.ParseCertificate(leaf)
	if err != nil {
		return Certificate{}, fmt.Errorf("reading the certificate just issued: %w", err)
	}
	d, err = s.st.UpdateDevice(ctx, d.ID, func(d *store.Device) error {
		d.CertSerial, d.CertExpires, d.LastSeen = cert.SerialNumber.Text(16), cert.NotAfter, s.cfg.Now()
		return nil
	})
	if err != nil {
		return Certificate{}, err
	}
	s.rememberDevice(d)
	return Certificate{Device: d, Leaf: leaf, Chain: inter, ID: id.String(), Expiry: cert.NotAfter}, nil
}

// parseCSR checks a device's certificate request: well-formed, signed by
// its own key, an ECDSA P-256 key. It returns the request and the hex
// SHA-256 of the key's SubjectPublicKeyInfo.
func parseCSR(der []byte) (*x509.CertificateRequest, string, error) {
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, "", errkind.Errorf(errkind.Invalid, "reading the certificate request: %v", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, "", errkind.Errorf(errkind.Invalid, "the certificate request is not signed by its key: %v", err)
	}
	k, ok := req.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, "", errkind.Errorf(errkind.Invalid, "a device key must be ECDSA P-256, not %s", keyType(req.PublicKey))
	}
	sum := sha256.Sum256(req.RawSubjectPublicKeyInfo)
	return req, hex.EncodeToString(sum[:]), nil
}

// keyType names a public key's algorithm for a message: "RSA", "ECDSA
// P-384", "Ed25519".
func keyType(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return "RSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

func newDeviceID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// deviceID is the SPIFFE ID of a device.
func (s *Service) deviceID(d store.Device) *url.URL {
	return &url.URL{Scheme: ca.SPIFFEScheme, Host: s.cfg.Domain, Path: "/user/" + d.User + "/device/" + d.ID}
}

// Devices lists the devices of user (all for "").
func (s *Service) Devices(ctx context.Context, user string) ([]store.Device, error) {
	return s.st.ListDevices(ctx, user)
}

// Revoke stops trusting a device: its certificate is refused from its next
// request on, and it gets no new one.
func (s *Service) Revoke(ctx context.Context, id, reason string) (store.Device, error) {
	now := s.cfg.Now()
	d, err := s.st.UpdateDevice(ctx, id, func(d *store.Device) error {
		if d.Revoked.IsZero() {
			d.Revoked, d.RevokeReason = now, reason
		}
		return nil
	})
	if err != nil {
		return d, err
	}
	s.rememberDevice(d)
	s.forgetCerts()
	return d, nil
}

// trusted refuses a revoked device and a device of a disabled user.
func (s *Service) trusted(ctx context.Context, d store.Device) error {
	if !d.Revoked.IsZero() {
		return errkind.WithHint(errkind.Permission, fmt.Errorf("device %s was revoked on %s (%s)", d.ID, d.Revoked.UTC().Format(time.DateTime), d.RevokeReason),
			"sign in again from this device with noops login")
	}
	u, err := s.user(ctx, d.User)
	if err != nil {
		return err
	}
	if u.Disabled {
		return errkind.Errorf(errkind.Permission, "user %s is disabled", u.Name)
	}
	return nil
}

// DeviceIdentity is a verified device certificate.
type DeviceIdentity struct {
	Device  store.Device
	User    store.User
	ID      string // SPIFFE ID
	Expires time.Time
}

// certEntry is a chain VerifyDevice accepted, remembered by the leaf's
// DER bytes so that a connection's later requests skip the signature
// checks. Revocation is still checked on every request.
type certEntry struct {
	device  string
	user    string // as the SPIFFE ID names them
	id      string
	keyHash string // hex SHA-256 of the leaf's SubjectPublicKeyInfo
	expires time.Time
}

// maxCerts bounds the verified-chain cache.
const maxCerts = 4096

// VerifyDevice checks the certificate chain a client presented: signed by
// the platform CA, valid now, for client authentication, with a device
// SPIFFE ID of this trust domain; the device exists, holds the
// certificate's key, is not revoked, and its user is enabled. Errors are
// Unauthenticated (the certificate itself is no good) or Permission (a
// good certificate of a device that is no longer trusted), with a hint.
func (s *Service) VerifyDevice(ctx context.Context, chain []*x509.Certificate) (DeviceIdentity, error) {
	if len(chain) == 0 {
		return DeviceIdentity{}, errkind.Errorf(errkind.Unauthenticated, "no client certificate")
	}
	leaf, now := chain[0], s.cfg.Now()
	s.mu.Lock()
	e, ok := s.certs[string(leaf.Raw)] // no copy: the compiler looks up []byte keys in place
	s.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		var err error
		if e, err = s.verifyChain(chain, now); err != nil {
			return DeviceIdentity{}, err
		}
		s.mu.Lock()
		if len(s.certs) >= maxCerts {
			clear(s.certs)
		}
		s.certs[string(leaf.Raw)] = e
		s.mu.Unlock()
	}
	d, err := s.device(ctx, e.device)
	if errkind.Is(err, errkind.NotFound) {
		return DeviceIdentity{}, errkind.WithHint(errkind.Unauthenticated, fmt.Errorf("device %s is not registered", e.device), "sign in with noops login")
	}
	if err != nil {
		return DeviceIdentity{}, err
	}
	if e.keyHash != d.KeyHash || e.user != d.User {
		return DeviceIdentity{}, errkind.WithHint(errkind.Unauthenticated, fmt.Errorf("the certificate names device %s but carries another device's key", d.ID),
			"each device signs in with its own key: run noops login on this device")
	}
	if !d.Revoked.IsZero() {
		return DeviceIdentity{}, s.trusted(ctx, d)
	}
	u, err := s.user(ctx, d.User)
	if err != nil {
		return DeviceIdentity{}, err
	}
	if u.Disabled {
		return DeviceIdentity{}, errkind.Errorf(errkind.Permission, "user %s is disabled", u.Name)
	}
	return DeviceIdentity{Device: d, User: u, ID: e.id, Expires: e.expires}, nil
}

func (s *Service) verifyChain(chain []*x509.Certificate, now time.Time) (certEntry, error) {
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: s.cfg.Issuer.RootPool(), Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	var inv x509.CertificateInvalidError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return certEntry{}, errkind.WithHint(errkind.Unauthenticated,
			fmt.Errorf("the device certificate expired at %s", leaf.NotAfter.UTC().Format(time.DateTime+" MST")),
			"renew it: noops login (the CLI renews at half-life while it runs)")
	case err != nil:
		return certEntry{}, errkind.WithHint(errkind.Unauthenticated, fmt.Errorf("the client certificate is not one of this platform's: %v", err),
			"sign in with noops login to get a device certificate of this platform")
	}
	id := ca.SPIFFEID(leaf)
	user, dev, ok := parseDeviceID(id, s.cfg.Domain)
	if !ok {
		return certEntry{}, errkind.Errorf(errkind.Unauthenticated, "the client certificate has no device identity of %s (URI SAN %v)", s.cfg.Domain, id)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return certEntry{device: dev, user: user, id: id.String(), keyHash: hex.EncodeToString(sum[:]), expires: leaf.NotAfter}, nil
}

// parseDeviceID reads spiffe://<domain>/user/<name>/device/<id>.
func parseDeviceID(id *url.URL, domain string) (user, device string, ok bool) {
	if id == nil || id.Host != domain {
		return "", "", false
	}
	parts := strings.Split(strings.TrimPrefix(id.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "user" || parts[2] != "device" || parts[1] == "" || parts[3] == "" {
		return "", "", false
	}
	return parts[1], parts[3], true
}

// forgetCerts drops the verified-chain cache (after a revocation or a
// disabled user, although both are also checked on every request).
func (s *Service) forgetCerts() {
	s.mu.Lock()
	clear(s.certs)
	s.mu.Unlock()
}
