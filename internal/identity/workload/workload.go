// Package workload gives every sandbox an identity: an X.509 SVID (ECDSA
// P-256, one hour by default) for spiffe://<domain>/app/<app>, its key and
// the trust bundle, in files the sandbox sees read-only at MountPath. The
// provider rotates each SVID at half its life, replacing the files
// atomically, so a workload that reads its files again for each new
// connection never presents an expired certificate and never drops a
// request. Workloads present their SVID to the gateway's internal mTLS
// listener, where the apps' Cedar policies judge them as principals.
package workload

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"noops/internal/errkind"
	"noops/internal/identity/ca"
)

// Where a sandbox finds its identity, and the files there.
const (
	MountPath  = "/run/noops/identity"
	FileSVID   = "svid.pem"   // certificate chain and key in one file: replaced in one step, never a mismatched pair
	FileCert   = "cert.pem"   // certificate chain (leaf, intermediate)
	FileKey    = "key.pem"    // private key (PKCS #8)
	FileBundle = "bundle.pem" // the platform CA root: trust it for the gateway and other workloads
	metaFile   = ".meta.json"
)

// Issuer signs SVIDs; *ca.CA is one.
type Issuer interface {
	IssueSVID(ca.SVID) (leaf, intermediate []byte, err error)
	RootPEM() []byte
}

// Config tunes the provider.
type Config struct {
	Dir    string // one folder per sandbox: Dir/<sandbox id>
	Domain string // the trust domain
	Issuer Issuer
	TTL    time.Duration // SVID lifetime; default DefaultTTL
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultTTL is an SVID's lifetime.
const DefaultTTL = time.Hour

// Provider issues, writes and rotates the sandboxes' SVIDs.
type Provider struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex // serialises writes of a sandbox's files
	stop chan struct{}
	done chan struct{}
}

// meta is what the provider keeps beside a sandbox's files.
type meta struct {
	App      string    `json:"app"`
	UID      uint32    `json:"uid"`
	GID      uint32    `json:"gid"`
	NotAfter time.Time `json:"not_after"`
	Renew    time.Time `json:"renew"`
}

// New returns a provider; Start begins rotating.
func New(cfg Config) *Provider {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{cfg: cfg, log: cfg.Logger}
}

// ID is the SPIFFE ID of an app's workloads.
func ID(domain, app string) *url.URL {
	return &url.URL{Scheme: ca.SPIFFEScheme, Host: domain, Path: "/app/" + app}
}

// AppOf returns the app a workload SPIFFE ID of domain names.
func AppOf(id *url.URL, domain string) (string, bool) {
	if id == nil || id.Scheme != ca.SPIFFEScheme || id.Host != domain {
		return "", false
	}
	app, ok := strings.CutPrefix(id.Path, "/app/")
	if !ok || app == "" || strings.Contains(app, "/") {
		return "", false
	}
	return app, true
}

var sandboxID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Provision issues the first SVID of sandbox id running app and writes its
// files, owned by uid:gid (the sandbox's user), into a folder of its own.
// It returns the host folder to mount at MountPath, read-only.
func (p *Provider) Provision(id, app string, uid, gid uint32) (string, error) {
	if !sandboxID.MatchString(id) {
		return "", errkind.Errorf(errkind.Invalid, "workload identity: sandbox id %q is not valid", id)
	}
	dir := p.dir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating identity folder of %s: %w", id, err)
	}
	if err := p.write(dir, meta{App: app, UID: uid, GID: gid}); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	// The sandbox's user may enter the folder and read, nothing else.
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("giving identity folder of %s to its sandbox: %w", id, err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("restricting identity folder of %s: %w", id, err)
	}
	return dir, nil
}

// Remove deletes a sandbox's identity; one that has none is not an error.
func (p *Provider) Remove(id string) error {
	if !sandboxID.MatchString(id) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := os.RemoveAll(p.dir(id)); err != nil {
		return fmt.Errorf("removing identity of %s: %w", id, err)
	}
	return nil
}

func (p *Provider) dir(id string) string { return filepath.Join(p.cfg.Dir, id) }

// write issues a new SVID for m.App and replaces the folder's files, each
// by a rename, the combined one last but one and the meta last.
func (p *Provider) write(dir string, m meta) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("identity folder of %s: %w", filepath.Base(dir), err) // removed meanwhile
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating workload key: %w", err)
	}
	leaf, inter, err := p.cfg.Issuer.IssueSVID(ca.SVID{ID: ID(p.cfg.Domain, m.App), Key: &key.PublicKey, TTL: p.cfg.TTL})
	if err != nil {
		return fmt.Errorf("issuing the SVID of %s: %w", m.App, err)
	}
	cert, err := x509.ParseCertificate(leaf)
	if err != nil {
		return fmt.Errorf("reading the SVID just issued: %w", err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding workload key: %w", err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter})...)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	m.NotAfter = cert.NotAfter
	m.Renew = cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) / 2)
	mb, _ := json.Marshal(m)
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{FileBundle, p.cfg.Issuer.RootPEM(), 0o444},
		{FileCert, chain, 0o444},
		{FileKey, keyPEM, 0o400},
		{FileSVID, append(append([]byte{}, chain...), keyPEM...), 0o400},
		{metaFile, mb, 0o400},
	}
	for _, f := range files {
		if err := replace(dir, f.name, f.data, f.mode, m.UID, m.GID); err != nil {
			return err
		}
	}
	return nil
}

// replace writes dir/name through a temporary file and a rename, owned by
// uid:gid with mode.
func replace(dir, name string, data []byte, mode os.FileMode, uid, gid uint32) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Chown(tmp, int(uid), int(gid)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("giving %s to the sandbox's user: %w", name, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("setting the mode of %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing %s: %w", name, err)
	}
	return nil
}

// Start rotates every provisioned SVID that is past half its life, then
// goes on doing so until Stop (sandboxes that outlived an earlier server
// included: the state is in their folders).
func (p *Provider) Start(context.Context) error {
	if err := os.MkdirAll(p.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", p.cfg.Dir, err)
	}
	p.rotateDue()
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	every := min(max(p.cfg.TTL/20, 100*time.Millisecond), time.Minute)
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.rotateDue()
			}
		}
	}()
	return nil
}

// Stop ends rotation.
func (p *Provider) Stop(ctx context.Context) error {
	if p.stop == nil {
		return nil
	}
	close(p.stop)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rotateDue renews the SVIDs past half their life.
func (p *Provider) rotateDue() {
	entries, err := os.ReadDir(p.cfg.Dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			p.log.Warn("listing workload identities", "err", err)
		}
		return
	}
	now := p.cfg.Now()
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(p.cfg.Dir, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, metaFile))
		if err != nil {
			continue // being provisioned or removed
		}
		var m meta
		if json.Unmarshal(b, &m) != nil || now.Before(m.Renew) {
			continue
		}
		if err := p.write(dir, m); err != nil {
			p.log.Error("rotating a workload SVID", "sandbox", e.Name(), "app", m.App, "err", err)
			continue
		}
		p.log.Debug("rotated workload SVID", "sandbox", e.Name(), "app", m.App)
	}
}
