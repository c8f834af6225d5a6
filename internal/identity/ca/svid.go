package ca

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"time"

	"noops/internal/errkind"
)

// SPIFFEScheme is the URI scheme of the identities the CA certifies.
const SPIFFEScheme = "spiffe"

// SVID asks for an identity certificate: a SPIFFE ID in a URI SAN
// ("spiffe://example.test/user/alice/device/d1"), the public key whose
// private half its holder keeps, a lifetime, and whether the holder also
// serves TLS under that identity (a workload) or only connects (a device).
type SVID struct {
	ID     *url.URL
	Key    crypto.PublicKey
	TTL    time.Duration
	Server bool
	// DNSNames are added for a workload that also serves TLS by name.
	DNSNames []string
}

// IssueSVID issues an X.509 SVID: a leaf with the SPIFFE ID as its only URI
// SAN (and the last path segment as common name), clientAuth, plus
// serverAuth when Server is set, valid for TTL or until the intermediate
// expires. It returns the leaf and the intermediate, DER-encoded: the chain
// a holder presents.
func (c *CA) IssueSVID(s SVID) (leaf, intermediate []byte, err error) {
	if err := checkSPIFFEID(s.ID); err != nil {
		return nil, nil, err
	}
	if s.TTL <= 0 {
		return nil, nil, errkind.Errorf(errkind.Invalid, "issuing certificate for %s: lifetime %v is not positive", s.ID, s.TTL)
	}
	if err := checkPublicKey(s.Key); err != nil {
		return nil, nil, fmt.Errorf("issuing certificate for %s: %w", s.ID, err)
	}
	for _, n := range s.DNSNames {
		if !validHost(n) {
			return nil, nil, errkind.Errorf(errkind.Invalid, "issuing certificate for %s: %q is not a DNS name", s.ID, n)
		}
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if s.Server {
		usage = append(usage, x509.ExtKeyUsageServerAuth)
	}
	cn := s.ID.Path[strings.LastIndex(s.ID.Path, "/")+1:]
	tmpl := &x509.Certificate{
		URIs:                  []*url.URL{s.ID},
		DNSNames:              s.DNSNames,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
	}
	tmpl.Subject.CommonName = cn
	cert, is, err := c.issue(tmpl, s.Key, s.TTL)
	if err != nil {
		return nil, nil, err
	}
	return cert.Raw, is.cert.Raw, nil
}

// checkSPIFFEID accepts spiffe://trust-domain/path with a non-empty path,
// no query, fragment, user info or port, as the SPIFFE ID standard says.
func checkSPIFFEID(u *url.URL) error {
	switch {
	case u == nil:
		return errkind.Errorf(errkind.Invalid, "issuing certificate: no SPIFFE ID")
	case u.Scheme != SPIFFEScheme || u.Opaque != "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "":
		return errkind.Errorf(errkind.Invalid, "issuing certificate: %q is not a SPIFFE ID (spiffe://trust-domain/path)", u)
	case !validHost(u.Hostname()):
		return errkind.Errorf(errkind.Invalid, "issuing certificate: %q: trust domain %q is not a lower-case DNS name", u, u.Hostname())
	case len(u.Path) < 2 || strings.HasSuffix(u.Path, "/") || strings.Contains(u.Path, "//"):
		return errkind.Errorf(errkind.Invalid, "issuing certificate: %q: the path must be non-empty, without empty segments", u)
	}
	return nil
}

// SPIFFEID returns the SPIFFE ID of a certificate: its one spiffe:// URI
// SAN, or nil when it has none or more than one.
func SPIFFEID(cert *x509.Certificate) *url.URL {
	var id *url.URL
	for _, u := range cert.URIs {
		if u.Scheme == SPIFFEScheme {
			if id != nil {
				return nil
			}
			id = u
		}
	}
	return id
}
