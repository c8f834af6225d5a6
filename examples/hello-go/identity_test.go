package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIdentityRereadsReplacedFiles: the certificate and the bundle are
// parsed once while the files stay, and again as soon as the platform
// renames new ones over them, even with the same modification time.
func TestIdentityRereadsReplacedFiles(t *testing.T) {
	ca1, ca2 := newCA(t, "ca-1"), newCA(t, "ca-2")
	dir := t.TempDir()
	writeIdentity(t, dir, ca1.issue(t, "svid-1", x509.ExtKeyUsageClientAuth), ca1)
	id := newIdentity(dir)

	c1, err := id.certificate()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := id.certificate(); again != c1 {
		t.Errorf("certificate() parsed an unchanged svid.pem again")
	}
	r1, err := id.roots()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := id.roots(); again != r1 {
		t.Errorf("roots() parsed an unchanged bundle.pem again")
	}

	// The replacement keeps the old modification time: the new inode is
	// what tells them apart.
	old, err := os.Stat(filepath.Join(dir, "svid.pem"))
	if err != nil {
		t.Fatal(err)
	}
	writeIdentity(t, dir, ca2.issue(t, "svid-2", x509.ExtKeyUsageClientAuth), ca2)
	for _, f := range []string{"svid.pem", "bundle.pem"} {
		if err := os.Chtimes(filepath.Join(dir, f), old.ModTime(), old.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	c2, err := id.certificate()
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c1 || c2.Leaf.Subject.CommonName != "svid-2" {
		t.Errorf("after rotation certificate() = %s, want svid-2", c2.Leaf.Subject.CommonName)
	}
	r2, err := id.roots()
	if err != nil {
		t.Fatal(err)
	}
	if r2 == r1 || !r2.Equal(poolOf(ca2)) {
		t.Errorf("after rotation roots() is not the new bundle")
	}
}

func poolOf(cas ...*testCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.cert)
	}
	return p
}

// TestIdentityBadFiles: missing, malformed and oversized files are errors
// that name the file; a bad replacement is not papered over with the old
// certificate.
func TestIdentityBadFiles(t *testing.T) {
	ca := newCA(t, "ca")
	good := ca.issue(t, "svid", x509.ExtKeyUsageClientAuth)
	cases := []struct {
		name    string
		svid    []byte // nil: no file
		bundle  []byte
		wantErr string
	}{
		{"no svid.pem", nil, ca.pem, "reading svid.pem"},
		{"svid.pem without a key", good.certPEM, ca.pem, "parsing svid.pem"},
		{"svid.pem is binary", []byte{0, 1, 2, 0xff, 0xfe}, ca.pem, "parsing svid.pem"},
		{"svid.pem is huge", make([]byte, maxIdentityFile+10), ca.pem, "larger than"},
		{"bundle.pem has no certificate", append(good.certPEM, good.keyPEM...), []byte("nothing here"), "parsing bundle.pem: no certificates"},
		{"no bundle.pem", append(good.certPEM, good.keyPEM...), nil, "reading bundle.pem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.svid != nil {
				replaceFile(t, filepath.Join(dir, "svid.pem"), tc.svid)
			}
			if tc.bundle != nil {
				replaceFile(t, filepath.Join(dir, "bundle.pem"), tc.bundle)
			}
			id := newIdentity(dir)
			_, cerr := id.certificate()
			_, rerr := id.roots()
			err := errors.Join(cerr, rerr)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("loading the identity = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}

	t.Run("a bad replacement is an error", func(t *testing.T) {
		dir := t.TempDir()
		writeIdentity(t, dir, good, ca)
		id := newIdentity(dir)
		if _, err := id.certificate(); err != nil {
			t.Fatal(err)
		}
		replaceFile(t, filepath.Join(dir, "svid.pem"), []byte("-----BEGIN GARBAGE-----"))
		if c, err := id.certificate(); err == nil {
			t.Errorf("certificate() after a bad replacement = %s, want an error", c.Leaf.Subject.CommonName)
		}
	})
}

// TestTLSConfigChecksTheServer: real handshakes with the configuration the
// exporter gets. It presents the SVID, and it refuses servers that the
// current bundle does not vouch for, for the endpoint's host, as servers.
func TestTLSConfigChecksTheServer(t *testing.T) {
	ca, other := newCA(t, "ca"), newCA(t, "other")
	dir := t.TempDir()
	writeIdentity(t, dir, ca.issue(t, "svid", x509.ExtKeyUsageClientAuth), ca)
	id := newIdentity(dir)

	cases := []struct {
		name    string
		server  issued
		host    string
		wantErr string // "" for a good handshake
	}{
		{"bundle CA, right address", ca.issue(t, "gw", x509.ExtKeyUsageServerAuth, localhost), "127.0.0.1", ""},
		{"unknown CA", other.issue(t, "gw", x509.ExtKeyUsageServerAuth, localhost), "127.0.0.1", "unknown authority"},
		{"certificate for another address", ca.issue(t, "gw", x509.ExtKeyUsageServerAuth, net.IPv4(10, 9, 9, 9)), "127.0.0.1", "127.0.0.1"},
		{"certificate for another name", ca.issue(t, "gw", x509.ExtKeyUsageServerAuth, localhost), "gateway.internal", "gateway.internal"},
		{"client certificate posing as a server", ca.issue(t, "gw", x509.ExtKeyUsageClientAuth, localhost), "127.0.0.1", "incompatible key usage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			peer, err := handshake(t, tc.server.tls, poolOf(ca), id.tlsConfig(tc.host))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("handshake = %v, want success", err)
				}
				if peer != "svid" {
					t.Errorf("the server saw client %q, want svid", peer)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("handshake = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

// handshake runs a TLS handshake between a server presenting cert and
// requiring a client certificate from clientCAs, and a client with cfg. It
// returns the client certificate's common name as the server saw it.
func handshake(t *testing.T, cert tls.Certificate, clientCAs *x509.CertPool, cfg *tls.Config) (string, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		defer close(peer)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if tc.Handshake() == nil {
			peer <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		}
	}()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	return <-peer, nil
}
