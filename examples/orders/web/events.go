package main

// Publishing events through the platform: POST $NOOPS_EVENTS_URL/<topic>
// over mutual TLS with the sandbox's identity. This file is the same in
// the web and billing apps.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// outEvent is one event to publish. Only Topic and Data are required.
type outEvent struct {
	Topic        string
	Type         string // ce-type
	ID           string // ce-id; the platform makes one when empty
	PartitionKey string // ce-partitionkey: events of one key stay in order
	TraceParent  string // the W3C traceparent to continue, if any
	ContentType  string
	Data         []byte
}

// publisher posts events to the platform. With no URL (the app runs
// outside noops: locally, in tests) it logs what it would have published.
type publisher struct {
	url    string // $NOOPS_EVENTS_URL
	client *http.Client
}

// newPublisher reads NOOPS_EVENTS_URL and NOOPS_IDENTITY_DIR.
func newPublisher() (*publisher, error) {
	u := os.Getenv("NOOPS_EVENTS_URL")
	if u == "" {
		return &publisher{}, nil
	}
	dir := os.Getenv("NOOPS_IDENTITY_DIR")
	if dir == "" {
		return nil, errors.New("NOOPS_EVENTS_URL is set but NOOPS_IDENTITY_DIR is not")
	}
	return &publisher{url: u, client: mtlsClient(&identity{dir: dir, now: time.Now}, "gateway.internal")}, nil
}

// publish sends e and returns the event's ID.
func (p *publisher) publish(ctx context.Context, e outEvent) (string, error) {
	if p.url == "" {
		id := e.ID
		if id == "" {
			id = "local-" + randomHex(8)
		}
		log.Printf("NOOPS_EVENTS_URL unset, not publishing: topic=%s type=%s id=%s key=%s traceparent=%q data=%s",
			e.Topic, e.Type, id, e.PartitionKey, e.TraceParent, e.Data)
		return id, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.url, "/")+"/"+url.PathEscape(e.Topic), bytes.NewReader(e.Data))
	if err != nil {
		return "", err
	}
	for k, v := range map[string]string{"Content-Type": e.ContentType, "ce-type": e.Type, "ce-id": e.ID,
		"ce-partitionkey": e.PartitionKey, "traceparent": e.TraceParent} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("publish to %s: %w", e.Topic, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("publish to %s: %s: %s", e.Topic, resp.Status, bytes.TrimSpace(body))
	}
	var ans struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.ID == "" {
		return "", fmt.Errorf("publish to %s: unexpected answer %q", e.Topic, body)
	}
	return ans.ID, nil
}

// identity reads the sandbox's certificate and key (svid.pem) and the
// bundle of CAs the gateway is checked against (bundle.pem). The platform
// rotates both, so they are read again when the last read is older than
// identityTTL.
type identity struct {
	dir string
	now func() time.Time

	mu    sync.Mutex
	read  time.Time
	cert  *tls.Certificate
	roots *x509.CertPool
}

const identityTTL = time.Minute

func (id *identity) load() (*tls.Certificate, *x509.CertPool, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.cert != nil && id.now().Sub(id.read) < identityTTL {
		return id.cert, id.roots, nil
	}
	svid, err := os.ReadFile(filepath.Join(id.dir, "svid.pem"))
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.X509KeyPair(svid, svid) // chain and key in one file
	if err != nil {
		return nil, nil, fmt.Errorf("svid.pem: %w", err)
	}
	bundle, err := os.ReadFile(filepath.Join(id.dir, "bundle.pem"))
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return nil, nil, errors.New("bundle.pem: no certificates")
	}
	id.cert, id.roots, id.read = &cert, roots, id.now()
	return id.cert, id.roots, nil
}

// mtlsClient returns a client whose every new connection checks the
// server as serverName against the current bundle and presents the
// current certificate.
func mtlsClient(id *identity, serverName string) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, roots, err := id.load()
			if err != nil {
				return nil, err
			}
			cfg := &tls.Config{
				ServerName: serverName,
				RootCAs:    roots,
				MinVersion: tls.VersionTLS12,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					cert, _, err := id.load()
					return cert, err
				},
			}
			return (&tls.Dialer{NetDialer: dialer, Config: cfg}).DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}

// traceID returns the trace ID of a W3C traceparent
// ("00-<32 hex>-<16 hex>-<2 hex>"), or "" when tp is not a valid one.
func traceID(tp string) string {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 ||
		(parts[0] == "00" && len(parts) != 4) {
		return ""
	}
	for _, p := range parts[:4] {
		if _, err := hex.DecodeString(p); err != nil || strings.ToLower(p) != p {
			return ""
		}
	}
	if parts[1] == strings.Repeat("0", 32) || parts[2] == strings.Repeat("0", 16) {
		return ""
	}
	return parts[1]
}
