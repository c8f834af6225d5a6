package ca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// handshake runs a TLS handshake between server and client over loopback
// TCP (whose buffers let a failing side send its alert without a reader) and
// returns both sides' errors and states.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error, ss, cs tls.ConnectionState) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			serverErr = err
			return
		}
		defer conn.Close()
		srv := tls.Server(conn, server)
		serverErr = srv.HandshakeContext(ctx)
		ss = srv.ConnectionState()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cli := tls.Client(conn, client)
	clientErr = cli.HandshakeContext(ctx)
	cs = cli.ConnectionState()
	<-done
	return serverErr, clientErr, ss, cs
}

func TestHandshakeWithOnDemandCertificate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		serverName string
		maxVersion uint16
		wantOK     bool
	}{
		{name: "TLS 1.3", serverName: "app.example.test", maxVersion: tls.VersionTLS13, wantOK: true},
		{name: "TLS 1.2", serverName: "app.example.test", maxVersion: tls.VersionTLS12, wantOK: true},
		{name: "host not served", serverName: "other.example.test", maxVersion: tls.VersionTLS13},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newCA(t)
			c.Allow(allowOnly("app.example.test"))
			server := &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12, Time: clk.Now}
			client := &tls.Config{
				RootCAs: c.RootPool(), ServerName: tc.serverName, Time: clk.Now,
				MinVersion: tls.VersionTLS12, MaxVersion: tc.maxVersion,
			}
			serr, cerr, _, cs := handshake(t, server, client)
			if !tc.wantOK {
				if serr == nil || cerr == nil {
					t.Fatalf("handshake for %q: server %v, client %v, want both to fail", tc.serverName, serr, cerr)
				}
				return
			}
			if serr != nil || cerr != nil {
				t.Fatalf("handshake for %q: server %v, client %v", tc.serverName, serr, cerr)
			}
			if cs.Version != tc.maxVersion {
				t.Errorf("negotiated version %x, want %x", cs.Version, tc.maxVersion)
			}
			chain := cs.VerifiedChains[0]
			if root := chain[len(chain)-1]; !root.Equal(c.root) {
				t.Errorf("client verified up to %q, want the CA's root", root.Subject)
			}
		})
	}
}

func TestHTTPSServerWithRealClock(t *testing.T) {
	t.Parallel()
	c := openCA(t, filepath.Join(t.TempDir(), "ca"), time.Now)
	c.Allow(allowOnly("app.test"))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.TLS.ServerName)
	}))
	srv.TLS = &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: c.RootPool(), ServerName: "app.test", MinVersion: tls.VersionTLS12,
	}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s as app.test = %v", srv.URL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from app.test" {
		t.Errorf("body = %q, want %q", body, "hello from app.test")
	}
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	c, clk, _ := newCA(t)
	stranger, _, _ := newCA(t)
	serverCert, err := c.IssueServer([]string{"svc.internal"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	device := func(t *testing.T, ca *CA) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := ca.IssueClient("device-1", time.Hour, &key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der, ca.Intermediate().Raw}, PrivateKey: key}
	}
	cases := []struct {
		name   string
		ca     *CA
		wantOK bool
	}{
		{name: "device of this CA", ca: c, wantOK: true},
		{name: "device of another CA", ca: stranger},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			server := &tls.Config{
				Certificates: []tls.Certificate{*serverCert}, MinVersion: tls.VersionTLS12, Time: clk.Now,
				ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: c.RootPool(),
			}
			client := &tls.Config{
				Certificates: []tls.Certificate{device(t, tc.ca)}, RootCAs: c.RootPool(),
				ServerName: "svc.internal", MinVersion: tls.VersionTLS12, Time: clk.Now,
			}
			serr, cerr, ss, _ := handshake(t, server, client)
			if !tc.wantOK {
				if serr == nil {
					t.Fatalf("server accepted a client certificate from another CA")
				}
				return
			}
			if serr != nil || cerr != nil {
				t.Fatalf("mTLS handshake: server %v, client %v", serr, cerr)
			}
			if cn := ss.PeerCertificates[0].Subject.CommonName; cn != "device-1" {
				t.Errorf("server saw client %q, want device-1", cn)
			}
			if !bytes.Equal(ss.VerifiedChains[0][2].Raw, c.root.Raw) {
				t.Errorf("client chain does not end at the root")
			}
		})
	}
}
