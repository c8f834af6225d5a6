package ca

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"noops/internal/errkind"
)

// leaf is a cached server certificate.
type leaf struct {
	cert    *tls.Certificate
	renewAt time.Time // when less than a third of its lifetime remains
	expires time.Time
}

// flight is one issuance in progress; others asking for the same name wait
// for it instead of issuing their own.
type flight struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// Allow sets which host names GetCertificate issues certificates for: those
// for which allow returns true, given the lower-case name. Until Allow is
// called, and after Allow(nil), no name is allowed.
func (c *CA) Allow(allow func(host string) bool) {
	if allow == nil {
		c.allow.Store(nil)
		return
	}
	c.allow.Store(&allow)
}

// Fallback makes GetCertificate answer a name that Allow refuses but that
// is one label under domain ("nosuch.example.test") with one wildcard
// certificate for "*.domain", so that a client asking for an app that does
// not exist (or no longer does) reaches the gateway's 404 page over valid
// TLS. Only that one certificate is ever minted for refused names. An empty
// domain turns the fallback off.
//
// Clients refuse a wildcard directly under a one-label domain ("*.localhost"
// is too broad for curl and browsers), so under such a domain, which is a
// local set-up, the refused name gets a certificate of its own instead,
// held in the same bounded cache as the others.
func (c *CA) Fallback(domain string) {
	domain = strings.ToLower(strings.Trim(domain, "."))
	c.fallback.Store(&domain)
}

// wildcardFor returns the name to certify for a refused name that is one
// label under the fallback domain: "*.domain", or the name itself under a
// one-label domain; else "".
func (c *CA) wildcardFor(name string) string {
	d := c.fallback.Load()
	if d == nil || *d == "" {
		return ""
	}
	label, rest, ok := strings.Cut(name, ".")
	if !ok || label == "" || rest != *d {
		return ""
	}
	if !strings.Contains(*d, ".") {
		return name
	}
	return "*." + *d
}

// GetCertificate returns a certificate for the server name the client asked
// for, issuing it on first use and again when less than a third of its
// lifetime remains. It is meant for tls.Config.GetCertificate. A hello without
// a server name, with a malformed one or with one that the allow function
// refuses gets an error, so the handshake fails and no certificate is minted.
func (c *CA) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		return nil, errkind.Errorf(errkind.Invalid, "choosing certificate: the client sent no server name (SNI)")
	}
	if !validHost(name) {
		return nil, errkind.Errorf(errkind.Invalid, "choosing certificate for %q: not a valid host name", name)
	}
	if allow := c.allow.Load(); allow == nil || !(*allow)(name) {
		wild := c.wildcardFor(name)
		if wild == "" {
			return nil, errkind.Errorf(errkind.Permission, "choosing certificate for %q: not a host served here", name)
		}
		name = wild
	}
	c.mu.RLock()
	l := c.leaves[name]
	c.mu.RUnlock()
	if l != nil && c.now().Before(l.renewAt) {
		return l.cert, nil
	}
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return c.renew(ctx, name)
}

// renew issues the certificate for name, or waits for the issuance already in
// progress. If issuing fails while the cached certificate is still valid, the
// cached one is returned and issuing is tried again on the next handshake.
func (c *CA) renew(ctx context.Context, name string) (*tls.Certificate, error) {
	c.mu.Lock()
	if l := c.leaves[name]; l != nil && c.now().Before(l.renewAt) {
		c.mu.Unlock()
		return l.cert, nil
	}
	if f := c.inflight[name]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.cert, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the certificate of %q: %w", name, ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	c.inflight[name] = f
	c.mu.Unlock()

	cert, err := c.issueServer([]string{name}, nil, leafLifetime)
	if err != nil {
		err = fmt.Errorf("issuing certificate for %q: %w", name, err)
	} else {
		c.issued.Add(1)
	}

	c.mu.Lock()
	delete(c.inflight, name)
	now := c.now()
	if err == nil {
		c.store(name, cert, now)
	} else if l := c.leaves[name]; l != nil && now.Before(l.expires) {
		cert, err = l.cert, nil
	}
	c.mu.Unlock()

	f.cert, f.err = cert, err
	close(f.done)
	return cert, err
}

// store caches cert for name, making room first when the cache is full: it
// drops expired certificates and, if none expired, the one expiring soonest.
// The caller holds mu.
func (c *CA) store(name string, cert *tls.Certificate, now time.Time) {
	if _, ok := c.leaves[name]; !ok && len(c.leaves) >= c.maxLeaves {
		var soonest string
		for n, l := range c.leaves {
			if !now.Before(l.expires) {
				delete(c.leaves, n)
			} else if soonest == "" || l.expires.Before(c.leaves[soonest].expires) {
				soonest = n
			}
		}
		if len(c.leaves) >= c.maxLeaves && soonest != "" {
			delete(c.leaves, soonest)
		}
	}
	lifetime := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore)
	c.leaves[name] = &leaf{
		cert:    cert,
		renewAt: cert.Leaf.NotAfter.Add(-lifetime / 3),
		expires: cert.Leaf.NotAfter,
	}
}
