package main

// Test helpers: a small PKI (CAs, server and client certificates), the
// identity folder as the platform writes it, and an OTLP/HTTP receiver
// that requires a client certificate.

import (
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial atomic.Int64

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issued is a certificate with its key, as PEM and as a tls.Certificate.
type issued struct {
	certPEM, keyPEM []byte
	tls             tls.Certificate
}

// issue signs a certificate for cn with usage; ips become IP SANs.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, ips ...net.IP) issued {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := issued{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	if c.tls, err = tls.X509KeyPair(c.certPEM, c.keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}

var localhost = net.IPv4(127, 0, 0, 1)

// replaceFile writes data to path the way the platform rotates identity
// files: a new file renamed over the old one.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeIdentity lays out dir as NOOPS_IDENTITY_DIR: svid.pem (chain and
// key), cert.pem, key.pem and bundle.pem (the CAs).
func writeIdentity(t *testing.T, dir string, svid issued, bundle ...*testCA) {
	t.Helper()
	var b []byte
	for _, ca := range bundle {
		b = append(b, ca.pem...)
	}
	replaceFile(t, filepath.Join(dir, "cert.pem"), svid.certPEM)
	replaceFile(t, filepath.Join(dir, "key.pem"), svid.keyPEM)
	replaceFile(t, filepath.Join(dir, "svid.pem"), append(append([]byte{}, svid.certPEM...), svid.keyPEM...))
	replaceFile(t, filepath.Join(dir, "bundle.pem"), b)
}

// export is one request the receiver accepted.
type export struct {
	client string // the client certificate's common name
	req    *coltracepb.ExportTraceServiceRequest
}

// receiver is an OTLP/HTTP trace receiver at /.noops/otlp/v1/traces that
// requires and verifies a client certificate, like the gateway's internal
// listener.
type receiver struct {
	url  string
	cert atomic.Pointer[tls.Certificate] // what the server presents

	mu      sync.Mutex
	exports []export
}

func startReceiver(t *testing.T, cert tls.Certificate, clientCAs ...*testCA) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.cert.Store(&cert)
	pool := x509.NewCertPool()
	for _, ca := range clientCAs {
		pool.AddCert(ca.cert)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return rc.cert.Load(), nil },
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second, ErrorLog: discardLog}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	rc.url = "https://" + ln.Addr().String()
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/.noops/otlp/v1/traces" {
		http.Error(w, "not an OTLP trace export: "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, 8<<20)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(data, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.exports = append(rc.exports, export{client: r.TLS.PeerCertificates[0].Subject.CommonName, req: req})
	rc.mu.Unlock()
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	// Every export on a new connection, so that every export is a new
	// handshake with the identity of the moment.
	w.Header().Set("Connection", "close")
	w.Write(resp)
}

// received is what was exported so far.
func (rc *receiver) received() []export {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]export(nil), rc.exports...)
}

// setPlatformEnv sets the variables noops gives a sandbox, for an OTLP
// endpoint at base and the identity in dir.
func setPlatformEnv(t *testing.T, base, dir, app, release string) {
	t.Helper()
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           base + "/.noops/otlp",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    "",
		"OTEL_EXPORTER_OTLP_PROTOCOL":           "http/protobuf",
		"OTEL_SERVICE_NAME":                     app,
		"OTEL_RESOURCE_ATTRIBUTES":              "noops.app=" + app + ",noops.release=" + release,
		"OTEL_EXPORTER_OTLP_CERTIFICATE":        filepath.Join(dir, "bundle.pem"),
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": filepath.Join(dir, "cert.pem"),
		"OTEL_EXPORTER_OTLP_CLIENT_KEY":         filepath.Join(dir, "key.pem"),
		"NOOPS_IDENTITY_DIR":                    dir,
		"OTEL_SDK_DISABLED":                     "",
	} {
		t.Setenv(k, v)
	}
}

// discardLog keeps the receiver's TLS errors (expected in the failure
// cases) out of the test output.
var discardLog = log.New(io.Discard, "", 0)
