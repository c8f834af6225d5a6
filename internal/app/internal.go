package app

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"noops/internal/identity/ca"
)

// DefaultInternal is where the gateway's internal mTLS listener listens:
// every address, port 15443; only the app network and loopback may
// connect, and only with a workload certificate.
const DefaultInternal = ":15443"

// internalTLS is the internal listener's TLS configuration: a server
// certificate for the app bridge's address, renewed when a third of its
// life remains, and client certificates required and verified against the
// platform CA.
func internalTLS(c *ca.CA, bridgeIP netip.Addr) *tls.Config {
	ic := &internalCert{ca: c, names: []string{bridgeIP.String(), "gateway.internal"}}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return ic.get() },
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      c.RootPool(),
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

type internalCert struct {
	ca    *ca.CA
	names []string

	mu      sync.Mutex
	cert    *tls.Certificate
	renewAt time.Time
}

const internalCertTTL = 24 * time.Hour

func (ic *internalCert) get() (*tls.Certificate, error) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.cert != nil && time.Now().Before(ic.renewAt) {
		return ic.cert, nil
	}
	cert, err := ic.ca.IssueServer(ic.names, internalCertTTL)
	if err != nil {
		if ic.cert != nil && time.Now().Before(ic.cert.Leaf.NotAfter) {
			return ic.cert, nil // the current one still serves; try again next time
		}
		return nil, fmt.Errorf("issuing the internal listener's certificate: %w", err)
	}
	ic.cert = cert
	ic.renewAt = cert.Leaf.NotBefore.Add(cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore) * 2 / 3)
	return cert, nil
}

// bridgeAddr is the app bridge's own address: the first of its subnet, as
// CNI's host-local IPAM makes it the sandboxes' gateway.
func bridgeAddr(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

// internalURL is what sandboxes are told to call: the bridge address and
// the internal listener's port.
func internalURL(bridge netip.Addr, ln net.Addr) string {
	_, port, _ := net.SplitHostPort(ln.String())
	return "https://" + net.JoinHostPort(bridge.String(), port)
}
