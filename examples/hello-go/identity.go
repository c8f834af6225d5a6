package main

// The sandbox's workload identity, as the platform hands it over: files in
// $NOOPS_IDENTITY_DIR that it replaces (write, then rename) before they
// expire. The certificate lives an hour, so a TLS configuration built once
// at start would stop working; this one reads the files again whenever
// they have changed.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// maxIdentityFile bounds what is read of one identity file: a chain and a
// key, or a bundle of a few CAs, are a few kilobytes.
const maxIdentityFile = 1 << 20

// identity reads the sandbox's certificate chain and key (svid.pem, one
// file so that a rotation never pairs an old certificate with a new key)
// and the CAs that the gateway's certificate is checked against
// (bundle.pem). Each file is parsed again only when it is not the file
// read last time (another inode, size or modification time).
type identity struct {
	dir string

	mu     sync.Mutex
	svid   cachedFile[*tls.Certificate]
	bundle cachedFile[*x509.CertPool]
}

func newIdentity(dir string) *identity { return &identity{dir: dir} }

// certificate is the current SVID: the certificate to present.
func (id *identity) certificate() (*tls.Certificate, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.svid.load(filepath.Join(id.dir, "svid.pem"), parseSVID)
}

// roots is the current trust bundle.
func (id *identity) roots() (*x509.CertPool, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.bundle.load(filepath.Join(id.dir, "bundle.pem"), parseBundle)
}

// tlsConfig is the client configuration for calling host (the name or
// address in the endpoint URL) with mutual TLS: every handshake presents
// the current SVID and checks the server against the current bundle.
//
// tls.Config has a hook for the client certificate per handshake but none
// for the roots, so the built-in check is switched off and VerifyConnection
// makes the same check (chain to a bundle CA, server usage, host name)
// against the bundle as it is now. VerifyConnection also runs on resumed
// sessions, so no connection skips it.
func (id *identity) tlsConfig(host string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // VerifyConnection verifies; see above
		VerifyConnection:   func(cs tls.ConnectionState) error { return id.verify(cs, host) },
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.certificate()
		},
	}
}

// verify checks the server's chain against the current bundle for host.
func (id *identity) verify(cs tls.ConnectionState, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("verifying the OTLP endpoint: it presented no certificate")
	}
	roots, err := id.roots()
	if err != nil {
		return fmt.Errorf("verifying the OTLP endpoint: %w", err)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("verifying the OTLP endpoint %s: %w", host, err)
	}
	return nil
}

// cachedFile is the parsed content of a file and which file it was.
type cachedFile[T any] struct {
	info os.FileInfo // nil until the first successful read
	val  T
}

// load returns the parsed content of path, reading it again only when the
// file there is not the one read last time. The file is opened once and
// both checked and read through that handle, so a replacement between the
// two cannot pair new content with the old file's identity.
func (c *cachedFile[T]) load(path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return zero, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
	}
	if c.info != nil && os.SameFile(c.info, fi) && fi.ModTime().Equal(c.info.ModTime()) && fi.Size() == c.info.Size() {
		return c.val, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIdentityFile+1))
	if err != nil {
		return zero, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
	}
	if len(data) > maxIdentityFile {
		return zero, fmt.Errorf("reading %s: larger than %d bytes", filepath.Base(path), maxIdentityFile)
	}
	v, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("parsing %s: %w", filepath.Base(path), err)
	}
	c.info, c.val = fi, v
	return v, nil
}

// parseSVID parses a PEM file holding a certificate chain and its key.
func parseSVID(data []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// parseBundle parses a PEM file of CA certificates.
func parseBundle(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("no certificates")
	}
	return pool, nil
}
