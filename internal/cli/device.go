package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"noops/internal/apiclient"
	"noops/internal/apitype"
	"noops/internal/errkind"
)

// deviceDir is where the device keeps its key and certificate for the
// server at base: $NOOPS_CONFIG/devices/<host_port>, NOOPS_CONFIG being
// ~/.config/noops by default.
func deviceDir(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", errkind.Errorf(errkind.Invalid, "%q is not https://HOST[:PORT]", base)
	}
	root := os.Getenv("NOOPS_CONFIG")
	if root == "" {
		cfg, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("finding the configuration folder: %w (set NOOPS_CONFIG)", err)
		}
		root = filepath.Join(cfg, "noops")
	}
	return filepath.Join(root, "devices", strings.ReplaceAll(u.Host, ":", "_")), nil
}

// deviceInfo is what `noops login` recorded beside the key.
type deviceInfo struct {
	URL      string    `json:"url"`
	User     string    `json:"user"`
	Device   string    `json:"device"`
	SPIFFEID string    `json:"spiffe_id"`
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"`
}

// creds are a device's credentials for one server.
type creds struct {
	dir  string
	info deviceInfo
	key  *ecdsa.PrivateKey
	cert *tls.Certificate // nil before the first login
	root *x509.CertPool
}

// loadCreds reads the device's credentials for base; a missing key is not
// an error (the device has not signed in yet).
func loadCreds(base string) (*creds, error) {
	dir, err := deviceDir(base)
	if err != nil {
		return nil, err
	}
	c := &creds{dir: dir}
	kb, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the device key: %w", err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, errkind.Errorf(errkind.Invalid, "%s is not a PEM key: run noops login again", filepath.Join(dir, "key.pem"))
	}
	if c.key, err = x509.ParseECPrivateKey(blk.Bytes); err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "reading %s: %v", filepath.Join(dir, "key.pem"), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "device.json")); err == nil {
		_ = json.Unmarshal(b, &c.info)
	}
	if rb, err := os.ReadFile(filepath.Join(dir, "root.pem")); err == nil {
		c.root = x509.NewCertPool()
		c.root.AppendCertsFromPEM(rb)
	}
	cb, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err == nil {
		if cert, err := tls.X509KeyPair(cb, kb); err == nil {
			c.cert = &cert
		}
	}
	return c, nil
}

// newKey makes the device's key; it is written only by the login that
// registers it and never leaves the device.
func (c *creds) newKey() error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the device key: %w", err)
	}
	c.key = k
	return nil
}

func (c *creds) csr(name string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, c.key)
	if err != nil {
		return nil, fmt.Errorf("making the certificate request: %w", err)
	}
	return der, nil
}

// save writes the key (0600), the certificate, the root and the info.
func (c *creds) save(dc apitype.DeviceCert, base string) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", c.dir, err)
	}
	kd, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		return fmt.Errorf("encoding the device key: %w", err)
	}
	c.info = deviceInfo{URL: base, User: dc.Device.User, Device: dc.Device.ID, SPIFFEID: dc.SPIFFEID, Issued: time.Now(), Expires: dc.Expires}
	info, _ := json.MarshalIndent(c.info, "", "  ")
	files := []struct {
		name string
		data []byte
	}{
		{"key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})},
		{"cert.pem", []byte(dc.CertPEM)},
		{"device.json", info},
	}
	if dc.RootPEM != "" {
		files = append(files, struct {
			name string
			data []byte
		}{"root.pem", []byte(dc.RootPEM)})
	}
	for _, f := range files {
		tmp := filepath.Join(c.dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
		if err := os.Rename(tmp, filepath.Join(c.dir, f.name)); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	cert, err := tls.X509KeyPair([]byte(dc.CertPEM), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
	if err != nil {
		return fmt.Errorf("reading the certificate the server issued: %w", err)
	}
	c.cert = &cert
	return nil
}

// remoteClient is the client of NOOPS_URL with this device's certificate,
// renewed first when past half its life.
func (e *env) remoteClient(ctx context.Context, base string) (*apiclient.Client, error) {
	c, err := loadCreds(base)
	if err != nil {
		return nil, err
	}
	cl, err := apiclient.NewRemote(base, apiclient.Remote{Cert: c.cert, Roots: c.root, Connect: os.Getenv("NOOPS_CONNECT")})
	if err != nil || c.cert == nil || c.cert.Leaf == nil {
		return cl, err
	}
	leaf := c.cert.Leaf
	half := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if now := time.Now(); now.After(half) && now.Before(leaf.NotAfter) {
		if err := e.renew(ctx, cl, c, base); err != nil {
			fmt.Fprintf(e.stderr, "noops: warning: renewing the device certificate: %v\n", err)
			return cl, nil
		}
		return apiclient.NewRemote(base, apiclient.Remote{Cert: c.cert, Roots: c.root, Connect: os.Getenv("NOOPS_CONNECT")})
	}
	return cl, nil
}

func (e *env) renew(ctx context.Context, cl *apiclient.Client, c *creds, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	csr, err := c.csr(c.info.Device)
	if err != nil {
		return err
	}
	dc, err := cl.Renew(ctx, csr)
	if err != nil {
		return err
	}
	return c.save(dc, base)
}
