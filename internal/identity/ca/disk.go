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
	"strings"
)

// Files of the CA folder.
const (
	rootCertFile         = "root.crt"
	rootKeyFile          = "root.key"
	intermediateCertFile = "intermediate.crt"
	intermediateKeyFile  = "intermediate.key"

	stagePrefix = ".stage-" // being written; removed on Open
	commitDir   = ".commit" // complete; moved into place on Open

	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY" // PKCS #8
)

// file is one file to commit.
type file struct {
	name string
	data []byte
	perm os.FileMode
}

// pairFiles encodes a certificate (0644) and its PKCS #8 key (0600).
func pairFiles(certName, keyName string, cert *x509.Certificate, key crypto.Signer) ([]file, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key %s: %w", keyName, err)
	}
	return []file{
		{name: keyName, data: pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: der}), perm: 0o600},
		{name: certName, data: pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: cert.Raw}), perm: 0o644},
	}, nil
}

// commit writes files into dir as one unit. They are written and synced in a
// staging folder, which one rename turns into the commit folder; then they
// are moved into place. A crash before that rename leaves a staging folder
// that recoverDir removes; a crash after it leaves a commit folder that
// recoverDir finishes moving. Either way no reader sees half a change.
func commit(dir string, files []file) error {
	stage, err := os.MkdirTemp(dir, stagePrefix)
	if err != nil {
		return fmt.Errorf("staging CA files in %s: %w", dir, err)
	}
	for _, f := range files {
		if err := writeSynced(filepath.Join(stage, f.name), f.data, f.perm); err != nil {
			os.RemoveAll(stage)
			return err
		}
	}
	if err := syncDir(stage); err != nil {
		os.RemoveAll(stage)
		return err
	}
	if err := os.Rename(stage, filepath.Join(dir, commitDir)); err != nil {
		os.RemoveAll(stage)
		return fmt.Errorf("committing CA files in %s: %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return rollForward(dir)
}

// rollForward moves the files of a commit folder into place.
func rollForward(dir string) error {
	pending := filepath.Join(dir, commitDir)
	entries, err := os.ReadDir(pending)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading CA commit %s: %w", pending, err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(pending, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("installing CA file %s: %w", filepath.Join(dir, e.Name()), err)
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(pending); err != nil {
		return fmt.Errorf("removing CA commit %s: %w", pending, err)
	}
	return syncDir(dir)
}

// recoverDir undoes what an interrupted commit left in dir: staging folders
// are removed, a commit folder is finished.
func recoverDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading CA folder %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("removing interrupted CA change %s: %w", e.Name(), err)
			}
		}
	}
	return rollForward(dir)
}

func writeSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("writing CA file %s: %w", path, err)
	}
	err = f.Chmod(perm) // whatever the umask
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing CA file %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing CA folder %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing CA folder %s: %w", dir, err)
	}
	return nil
}

// loadPair reads a certificate and its key and checks that they belong
// together.
func (c *CA) loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	cert, err := c.readCert(certPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := c.readKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, c.damaged(keyPath, fmt.Errorf("the key does not match the certificate %s", certPath))
	}
	return cert, key, nil
}

func (c *CA) readCert(path string) (*x509.Certificate, error) {
	der, err := c.readPEM(path, pemCert)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, c.damaged(path, fmt.Errorf("parsing certificate: %w", err))
	}
	return cert, nil
}

func (c *CA) readKey(path string) (crypto.Signer, error) {
	der, err := c.readPEM(path, pemKey)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, c.damaged(path, fmt.Errorf("parsing PKCS #8 key: %w", err))
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, c.damaged(path, fmt.Errorf("a %T cannot sign", k))
	}
	return s, nil
}

// readPEM returns the bytes of the first PEM block of path, which must be of
// type typ.
func (c *CA) readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file %s: %w", path, err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, c.damaged(path, fmt.Errorf("no PEM %s block", typ))
	}
	if b.Type != typ {
		return nil, c.damaged(path, fmt.Errorf("PEM block is %q, want %q", b.Type, typ))
	}
	return b.Bytes, nil
}
