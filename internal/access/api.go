package access

import (
	"context"
	"net/http"

	"noops/internal/errkind"
	"noops/internal/gateway/policy"
	"noops/internal/identity"
)

// Caller is who called the remote admin API.
type Caller struct {
	Device identity.DeviceIdentity
	Trust  int
	Actor  string // for the audit log: "user:alice device:abc"
}

// DeviceOf verifies the device certificate of a remote API request: the
// caller of /v1/devices/renew needs nothing more.
func (a *Access) DeviceOf(ctx context.Context, r *http.Request) (identity.DeviceIdentity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return identity.DeviceIdentity{}, errkind.WithHint(errkind.Unauthenticated, errNoDevice, "sign in with noops login URL, then set NOOPS_URL")
	}
	return a.id.VerifyDevice(ctx, r.TLS.PeerCertificates)
}

var errNoDevice = errkind.Errorf(errkind.Unauthenticated, "the remote API needs a device certificate")

// AuthorizeAPI decides a remote admin API call: the caller must present a
// device certificate, and the platform policy (admins read and write,
// viewers read, both with at least AdminMinTrust) must allow verb.
func (a *Access) AuthorizeAPI(r *http.Request, verb string, write bool) (Caller, error) {
	dev, err := a.DeviceOf(r.Context(), r)
	if err != nil {
		return Caller{}, err
	}
	c := &who{user: dev.User, dev: dev, device: true}
	now := a.cfg.Now()
	score := a.cfg.Weights.Score(a.signals(c, r, now))
	action := "read"
	if write {
		action = "write"
	}
	d := a.platform.Authorize(policy.Request{
		Principal: policy.Principal{Kind: "user", Name: dev.User.Name, Roles: dev.User.Roles},
		Action:    action, Verb: verb, Path: r.URL.Path, Trust: score, SourceIP: clientAddr(r), Time: now,
		MTLS: dev.ID, Device: dev.Device.ID,
	})
	caller := Caller{Device: dev, Trust: score.Total, Actor: "user:" + dev.User.Name + " device:" + dev.Device.ID}
	if !d.Allow {
		a.log.Info("API call denied", "user", dev.User.Name, "device", dev.Device.ID, "verb", verb, "trust", score.String(), "reason", d.Reason)
		return caller, errkind.Errorf(errkind.Permission, "%s", d.Reason)
	}
	return caller, nil
}
