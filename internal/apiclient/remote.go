package apiclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"noops/internal/apitype"
	"noops/internal/errkind"
)

// Remote says how to reach the remote API.
type Remote struct {
	Cert  *tls.Certificate // the device's; nil before it has one
	Roots *x509.CertPool   // the platform CA; nil trusts the system's roots
	// Connect, when set, is the address dialled whatever the URL's host
	// resolves to (like curl --connect-to): for names without DNS.
	Connect string
}

// NewRemote returns a client of the remote API at base
// ("https://api.example.test").
func NewRemote(base string, o Remote) (*Client, error) {
	cert, roots := o.Cert, o.Roots
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, errkind.Errorf(errkind.Invalid, "NOOPS_URL %q is not https://HOST[:PORT]", base)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if cert != nil {
		c := *cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, DisableCompression: true,
		TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: 30 * time.Second}
	if o.Connect != "" {
		to := o.Connect
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, to)
		}
	}
	return &Client{hc: &http.Client{Transport: tr}, base: strings.TrimSuffix(base, "/"), sock: base}, nil
}

// Login signs a device in: the user's factors and the device's certificate
// request. It needs no client certificate.
func (c *Client) Login(ctx context.Context, req apitype.LoginRequest) (apitype.DeviceCert, error) {
	var out apitype.DeviceCert
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/login", req, &out)
}

// Renew gets the calling device a new certificate.
func (c *Client) Renew(ctx context.Context, csr []byte) (apitype.DeviceCert, error) {
	var out apitype.DeviceCert
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/devices/renew", apitype.RenewRequest{CSR: csr}, &out)
}

// WhoAmI returns the caller as the server sees it.
func (c *Client) WhoAmI(ctx context.Context) (apitype.WhoAmI, error) {
	var out apitype.WhoAmI
	return out, c.getJSON(ctx, "/v1/whoami", &out)
}

// Users lists the users.
func (c *Client) Users(ctx context.Context) ([]apitype.User, error) {
	var out []apitype.User
	return out, c.getJSON(ctx, "/v1/users", &out)
}

// AddUser creates a user.
func (c *Client) AddUser(ctx context.Context, req apitype.UserRequest) (apitype.User, error) {
	var out apitype.User
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/users", req, &out)
}

// ChangeUser changes a user.
func (c *Client) ChangeUser(ctx context.Context, name string, req apitype.UserChange) (apitype.User, error) {
	var out apitype.User
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(name), req, &out)
}

// EnrollTOTP starts a TOTP enrolment.
func (c *Client) EnrollTOTP(ctx context.Context, name string) (apitype.TOTPEnrolment, error) {
	var out apitype.TOTPEnrolment
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(name)+"/totp", nil, &out)
}

// ConfirmTOTP finishes a TOTP enrolment with a code.
func (c *Client) ConfirmTOTP(ctx context.Context, name, code string) error {
	return c.sendJSON(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(name)+"/totp/confirm", apitype.CodeRequest{Code: code}, nil)
}

// Devices lists devices, of user or of everyone ("").
func (c *Client) Devices(ctx context.Context, user string) ([]apitype.Device, error) {
	var out []apitype.Device
	p := "/v1/devices"
	if user != "" {
		p += "?user=" + url.QueryEscape(user)
	}
	return out, c.getJSON(ctx, p, &out)
}

// Revoke revokes a device.
func (c *Client) Revoke(ctx context.Context, id, reason string) (apitype.Device, error) {
	var out apitype.Device
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/devices/"+url.PathEscape(id)+"/revoke", apitype.RevokeRequest{Reason: reason}, &out)
}

// remoteErr explains why the remote API could not be reached or refused
// the connection.
func remoteErr(base string, err error) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return errkind.WithHint(errkind.Unavailable, err, "the server's certificate is not from the CA you trust for "+base+": pass --ca with `noops ca root` of that server")
	case errors.As(err, &invalid):
		return errkind.WithHint(errkind.Unavailable, err, "check the machine's clock and the server's name in NOOPS_URL")
	}
	return errkind.WithHint(errkind.Unavailable, err, "check NOOPS_URL ("+base+") and that the server is running")
}

// Bans lists the active bans.
func (c *Client) Bans(ctx context.Context) ([]apitype.Ban, error) {
	var out []apitype.Ban
	return out, c.getJSON(ctx, "/v1/bans", &out)
}

// Ban bans a client IP or CIDR for d ("" until removed).
func (c *Client) Ban(ctx context.Context, req apitype.BanRequest) (apitype.Ban, error) {
	var out apitype.Ban
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/bans", req, &out)
}

// Unban lifts the ban of a client IP or CIDR.
func (c *Client) Unban(ctx context.Context, prefix string) (apitype.Ban, error) {
	var out apitype.Ban
	return out, c.sendJSON(ctx, http.MethodPost, "/v1/bans/remove", apitype.BanRequest{Prefix: prefix}, &out)
}
