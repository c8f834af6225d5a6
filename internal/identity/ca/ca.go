// Package ca is the platform's internal certificate authority.
//
// It keeps an ECDSA P-256 root (ten years) and an intermediate (one year) in
// one folder, rotates the intermediate before it expires, and issues
// short-lived certificates signed by the intermediate: server certificates on
// demand during the TLS handshake, only for the names the gateway serves, and
// server and client certificates for mTLS workload and device identities. The
// root signs nothing but intermediates.
//
// The folder is written so that a crash never leaves half a CA: every change
// is staged in a temporary folder, committed by one rename and then moved into
// place (see disk.go). A damaged folder is reported, never replaced.
package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"noops/internal/errkind"
)

// Lifetimes and limits.
const (
	rootYears            = 10
	intermediateLifetime = 365 * 24 * time.Hour
	intermediateRenewal  = 30 * 24 * time.Hour // rotate when less than this remains
	leafLifetime         = 7 * 24 * time.Hour
	backdate             = time.Minute // NotBefore = now - backdate, for clock skew
	defaultMaxLeaves     = 10000
)

// CA is an open certificate authority. Its methods are safe for concurrent use.
type CA struct {
	dir string
	now func() time.Time

	root     *x509.Certificate
	rootKey  crypto.Signer
	rootPEM  []byte
	rootPool *x509.CertPool

	imu   sync.Mutex // guards inter; held while rotating it
	inter *issuer

	allow    atomic.Pointer[func(string) bool]
	fallback atomic.Pointer[string] // domain whose unserved hosts get a wildcard certificate

	mu        sync.RWMutex // guards leaves and inflight
	leaves    map[string]*leaf
	inflight  map[string]*flight
	maxLeaves int
	issued    atomic.Int64 // leaf certificates issued by GetCertificate
}

// issuer is an intermediate certificate and its key.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// Open opens the CA kept in dir, creating dir (mode 0700), a root and an
// intermediate on first use. It issues a new intermediate when the current one
// is missing or expires within 30 days. now gives the time for every validity
// period (nil means time.Now). A corrupt, mismatched or expired file is an
// errkind.Invalid error naming the file; nothing is overwritten.
func Open(dir string, now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating CA folder %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restricting CA folder %s: %w", dir, err)
	}
	if err := recoverDir(dir); err != nil {
		return nil, err
	}
	c := &CA{
		dir:       dir,
		now:       now,
		leaves:    make(map[string]*leaf),
		inflight:  make(map[string]*flight),
		maxLeaves: defaultMaxLeaves,
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the root and the intermediate, creating or rotating what is
// missing or due.
func (c *CA) load() error {
	crt, key := c.file(rootCertFile), c.file(rootKeyFile)
	haveCrt, err := exists(crt)
	if err != nil {
		return err
	}
	haveKey, err := exists(key)
	if err != nil {
		return err
	}
	switch {
	case !haveCrt && !haveKey:
		return c.create()
	case !haveCrt:
		return c.damaged(crt, errors.New("the root certificate is missing but its key exists"))
	case !haveKey:
		return c.damaged(key, errors.New("the root key is missing but its certificate exists"))
	}
	root, rootKey, err := c.loadPair(crt, key)
	if err != nil {
		return err
	}
	if err := c.checkRoot(root); err != nil {
		return err
	}
	c.setRoot(root, rootKey)

	inter, err := c.loadIntermediate()
	if err != nil {
		return err
	}
	now := c.now()
	if inter == nil || c.due(inter.cert, now) {
		return c.rotate(now)
	}
	c.inter = inter
	return nil
}

// create makes a new root and intermediate and commits all four files at once.
func (c *CA) create() error {
	now := c.now()
	root, rootKey, err := newRoot(now, rootName())
	if err != nil {
		return err
	}
	inter, err := newIntermediate(root, rootKey, now)
	if err != nil {
		return err
	}
	files, err := pairFiles(rootCertFile, rootKeyFile, root, rootKey)
	if err != nil {
		return err
	}
	more, err := pairFiles(intermediateCertFile, intermediateKeyFile, inter.cert, inter.key)
	if err != nil {
		return err
	}
	if err := commit(c.dir, append(files, more...)); err != nil {
		return err
	}
	c.setRoot(root, rootKey)
	c.inter = inter
	return nil
}

func (c *CA) checkRoot(root *x509.Certificate) error {
	crt := c.file(rootCertFile)
	if !root.IsCA || !root.BasicConstraintsValid {
		return c.damaged(crt, errors.New("the root certificate is not a CA certificate"))
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return c.damaged(crt, fmt.Errorf("the root certificate is not self-signed: %w", err))
	}
	if now := c.now(); !now.Before(root.NotAfter) {
		return c.damaged(crt, fmt.Errorf("the root certificate expired on %s", root.NotAfter.UTC().Format(time.DateOnly)))
	}
	return nil
}

// loadIntermediate reads the intermediate pair; it returns nil, nil when
// either file is missing, since a new intermediate costs clients nothing.
func (c *CA) loadIntermediate() (*issuer, error) {
	crt, key := c.file(intermediateCertFile), c.file(intermediateKeyFile)
	for _, p := range []string{crt, key} {
		ok, err := exists(p)
		if err != nil || !ok {
			return nil, err
		}
	}
	cert, k, err := c.loadPair(crt, key)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, c.damaged(crt, errors.New("the intermediate certificate is not a CA certificate"))
	}
	if err := cert.CheckSignatureFrom(c.root); err != nil {
		return nil, c.damaged(crt, fmt.Errorf("the intermediate certificate was not signed by %s: %w", c.file(rootCertFile), err))
	}
	return &issuer{cert: cert, key: k}, nil
}

// due reports whether the intermediate should be replaced at now: less than
// 30 days remain and a new one would outlive it (it never outlives the root).
func (c *CA) due(inter *x509.Certificate, now time.Time) bool {
	return inter.NotAfter.Sub(now) < intermediateRenewal && c.root.NotAfter.After(inter.NotAfter)
}

// rotate issues a new intermediate from the root and commits it. The caller
// holds imu or is Open.
func (c *CA) rotate(now time.Time) error {
	inter, err := newIntermediate(c.root, c.rootKey, now)
	if err != nil {
		return err
	}
	files, err := pairFiles(intermediateCertFile, intermediateKeyFile, inter.cert, inter.key)
	if err != nil {
		return err
	}
	if err := commit(c.dir, files); err != nil {
		return fmt.Errorf("rotating the intermediate certificate: %w", err)
	}
	c.inter = inter
	return nil
}

// issuer returns the intermediate to sign with, rotating it when due. When a
// rotation fails while the current intermediate is still valid, the current
// one is used and the rotation is tried again on the next issuance.
func (c *CA) issuer() (*issuer, error) {
	c.imu.Lock()
	defer c.imu.Unlock()
	now := c.now()
	if c.due(c.inter.cert, now) {
		if err := c.rotate(now); err != nil && !now.Before(c.inter.cert.NotAfter) {
			return nil, errkind.E(errkind.Unavailable, err)
		}
	}
	return c.inter, nil
}

func (c *CA) setRoot(root *x509.Certificate, key crypto.Signer) {
	c.root, c.rootKey = root, key
	c.rootPEM = pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: root.Raw})
	c.rootPool = x509.NewCertPool()
	c.rootPool.AddCert(root)
}

// RootPEM returns the root certificate in PEM form, for clients to trust.
func (c *CA) RootPEM() []byte { return append([]byte(nil), c.rootPEM...) }

// RootPool returns a pool holding only the root certificate. Each call
// returns a new pool that the caller may change.
func (c *CA) RootPool() *x509.CertPool { return c.rootPool.Clone() }

// Intermediate returns the intermediate certificate that currently signs.
func (c *CA) Intermediate() *x509.Certificate {
	c.imu.Lock()
	defer c.imu.Unlock()
	return c.inter.cert
}

func (c *CA) file(name string) string { return filepath.Join(c.dir, name) }

// damaged classifies a problem with a file of the CA folder.
func (c *CA) damaged(path string, err error) error {
	return errkind.WithHint(errkind.Invalid, fmt.Errorf("loading CA file %s: %w", path, err),
		fmt.Sprintf("the CA folder is damaged; move it away (mv %s %s.broken) to create a new CA, then make clients trust the new root (noops ca root)", c.dir, c.dir))
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("checking CA file %s: %w", path, err)
}
