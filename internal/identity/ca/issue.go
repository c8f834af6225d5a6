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
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"noops/internal/errkind"
)

// IssueServer issues a server certificate (serverAuth) for names, each a DNS
// name, a wildcard "*.name" or an IP address, valid for ttl or until the
// intermediate expires, whichever comes first. The chain holds the leaf and
// the intermediate; Leaf is set.
func (c *CA) IssueServer(names []string, ttl time.Duration) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errkind.Errorf(errkind.Invalid, "issuing server certificate: no names")
	}
	if ttl <= 0 {
		return nil, errkind.Errorf(errkind.Invalid, "issuing server certificate for %q: lifetime %v is not positive", names, ttl)
	}
	var dns []string
	var ips []net.IP
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if !validHost(strings.TrimPrefix(n, "*.")) {
			return nil, errkind.Errorf(errkind.Invalid, "issuing server certificate: %q is not a DNS name or IP address", n)
		}
		dns = append(dns, n)
	}
	return c.issueServer(dns, ips, ttl)
}

func (c *CA) issueServer(dns []string, ips []net.IP, ttl time.Duration) (*tls.Certificate, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		DNSNames:              dns,
		IPAddresses:           ips,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	cert, is, err := c.issue(tmpl, &key.PublicKey, ttl)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{
		Certificate: [][]byte{cert.Raw, is.cert.Raw},
		PrivateKey:  key,
		Leaf:        cert,
	}, nil
}

// IssueClient issues a client certificate (clientAuth) for pub with subject
// commonName, valid for ttl or until the intermediate expires, whichever comes
// first, and returns it DER-encoded. pub is an ECDSA, Ed25519 or RSA (2048
// bits or more) public key whose private half the client keeps.
func (c *CA) IssueClient(commonName string, ttl time.Duration, pub crypto.PublicKey) ([]byte, error) {
	if strings.TrimSpace(commonName) == "" || len(commonName) > 64 {
		return nil, errkind.Errorf(errkind.Invalid, "issuing client certificate: common name %q must have 1 to 64 characters", commonName)
	}
	if ttl <= 0 {
		return nil, errkind.Errorf(errkind.Invalid, "issuing client certificate for %q: lifetime %v is not positive", commonName, ttl)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, fmt.Errorf("issuing client certificate for %q: %w", commonName, err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	cert, _, err := c.issue(tmpl, pub, ttl)
	if err != nil {
		return nil, err
	}
	return cert.Raw, nil
}

func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil {
			break
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return errkind.Errorf(errkind.Invalid, "ECDSA curve %s is not accepted", k.Curve.Params().Name)
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return nil
		}
	case *rsa.PublicKey:
		if k != nil && k.N.BitLen() >= 2048 {
			return nil
		}
		if k != nil {
			return errkind.Errorf(errkind.Invalid, "RSA key of %d bits is too short, want 2048 or more", k.N.BitLen())
		}
	}
	return errkind.Errorf(errkind.Invalid, "public key %T is not an ECDSA, Ed25519 or RSA key", pub)
}

// issue signs tmpl with the current intermediate, valid from a minute ago for
// ttl, cut to the intermediate's end.
func (c *CA) issue(tmpl *x509.Certificate, pub crypto.PublicKey, ttl time.Duration) (*x509.Certificate, *issuer, error) {
	is, err := c.issuer()
	if err != nil {
		return nil, nil, err
	}
	now := c.now()
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = earliest(now.Add(ttl), is.cert.NotAfter)
	if !tmpl.NotAfter.After(now) {
		return nil, nil, errkind.Errorf(errkind.Unavailable, "issuing certificate: the intermediate expired on %s", is.cert.NotAfter.UTC().Format(time.DateOnly))
	}
	cert, err := sign(tmpl, is.cert, pub, is.key)
	if err != nil {
		return nil, nil, err
	}
	return cert, is, nil
}

func newRoot(now time.Time, name string) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"noops"}, CommonName: name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(rootYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert, err := sign(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating root certificate: %w", err)
	}
	return cert, key, nil
}

func newIntermediate(root *x509.Certificate, rootKey crypto.Signer, now time.Time) (*issuer, error) {
	if !now.Before(root.NotAfter) {
		return nil, errkind.Errorf(errkind.Unavailable, "creating intermediate certificate: the root expired on %s", root.NotAfter.UTC().Format(time.DateOnly))
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"noops"}, CommonName: "noops intermediate CA " + now.UTC().Format(time.DateOnly)},
		NotBefore:             now.Add(-backdate),
		NotAfter:              earliest(now.Add(intermediateLifetime), root.NotAfter),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	cert, err := sign(tmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("creating intermediate certificate: %w", err)
	}
	return &issuer{cert: cert, key: key}, nil
}

// rootName is "noops root CA <host> <random>": the host says where the root
// came from, the random part keeps two roots of one host apart.
func rootName() string {
	b := make([]byte, 3)
	rand.Read(b)
	name := "noops root CA"
	if h, err := os.Hostname(); err == nil && h != "" && len(h) <= 32 {
		name += " " + h
	}
	return name + " " + hex.EncodeToString(b)
}

func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating P-256 key: %w", err)
	}
	return k, nil
}

// sign creates the certificate of tmpl with a random 127-bit serial number.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("choosing serial number: %w", err)
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing issued certificate: %w", err)
	}
	return cert, nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// validHost reports whether name is a lower-case DNS host name: labels of
// letters, digits and inner hyphens, 1 to 63 long, 253 in all. It does not
// allocate: GetCertificate calls it on every handshake.
func validHost(name string) bool {
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		ch := name[i]
		switch {
		case ch == '.':
			if label == 0 || name[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case ch == '-':
			if label == 0 {
				return false
			}
		case 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9':
		default:
			return false
		}
		if label++; label > 63 {
			return false
		}
	}
	return label > 0 && name[len(name)-1] != '-'
}
