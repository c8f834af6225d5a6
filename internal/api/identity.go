package api

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"

	"noops/internal/access"
	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/identity"
	"noops/internal/store"
)

// Identity is the identity store as the API uses it.
type Identity interface {
	AddUser(ctx context.Context, name, password string, roles []string) (store.User, error)
	Users(ctx context.Context) ([]store.User, error)
	User(ctx context.Context, name string) (store.User, error)
	SetDisabled(ctx context.Context, name string, disabled bool) (store.User, error)
	SetRoles(ctx context.Context, name string, roles []string) (store.User, error)
	SetPassword(ctx context.Context, name, password string) (store.User, error)
	EnrollTOTP(ctx context.Context, name string) (identity.Enrolment, error)
	ConfirmTOTP(ctx context.Context, name, code string) error
	ResetTOTP(ctx context.Context, name string) error
	ResetPasskeys(ctx context.Context, name string) error
	Devices(ctx context.Context, user string) ([]store.Device, error)
	Revoke(ctx context.Context, id, reason string) (store.Device, error)
	Authenticate(ctx context.Context, l identity.Login) (identity.Auth, error)
	Enroll(ctx context.Context, a identity.Auth, name string, csr []byte) (identity.Certificate, error)
	Renew(ctx context.Context, dev identity.DeviceIdentity, csr []byte) (identity.Certificate, error)
}

// Remote authenticates and authorizes callers of the remote API.
type Remote interface {
	AuthorizeAPI(r *http.Request, verb string, write bool) (access.Caller, error)
	DeviceOf(ctx context.Context, r *http.Request) (identity.DeviceIdentity, error)
}

// public are the calls the remote API answers without a device
// certificate: signing a device in needs none yet, and the CA root is
// public. Renewing is the device's own business: its certificate is all it
// needs, the platform policy is not asked.
var public = map[string]bool{"POST /v1/login": true, "GET /v1/ca/root": true, pushPattern: true}

const renewPattern = "POST /v1/devices/renew"

type actorKey struct{}
type callerKey struct{}
type deviceKey struct{}

// authorize checks a remote call and records who made it.
func (s *server) authorize(r *http.Request, pattern string, write bool) (*http.Request, error) {
	if s.cfg.Remote == nil || public[pattern] {
		return r, nil
	}
	if pattern == renewPattern {
		dev, err := s.cfg.Remote.DeviceOf(r.Context(), r)
		if dev.Device.ID != "" {
			r = r.WithContext(context.WithValue(r.Context(), actorKey{}, "user:"+dev.User.Name+" device:"+dev.Device.ID))
		}
		if err != nil {
			return r, err
		}
		return r.WithContext(context.WithValue(r.Context(), deviceKey{}, dev)), nil
	}
	c, err := s.cfg.Remote.AuthorizeAPI(r, pattern, write)
	if c.Actor != "" {
		r = r.WithContext(context.WithValue(r.Context(), actorKey{}, c.Actor))
	}
	if err != nil {
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), nil
}

func (s *server) identityRoutes(handle func(string, func(http.ResponseWriter, *http.Request) error)) {
	handle("GET /v1/whoami", s.whoami)
	handle("POST /v1/login", s.login)
	handle(renewPattern, s.renew)
	handle("GET /v1/users", s.users)
	handle("POST /v1/users", s.addUser)
	handle("POST /v1/users/{user}", s.changeUser)
	handle("POST /v1/users/{user}/totp", s.enrollTOTP)
	handle("POST /v1/users/{user}/totp/confirm", s.confirmTOTP)
	handle("GET /v1/devices", s.devices)
	handle("POST /v1/devices/{device}/revoke", s.revoke)
}

func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	c, ok := r.Context().Value(callerKey{}).(access.Caller)
	if !ok {
		writeJSON(w, http.StatusOK, apitype.WhoAmI{User: actor(r), Roles: []string{identity.RoleAdmin}, Via: "admin socket"})
		return nil
	}
	d := c.Device
	writeJSON(w, http.StatusOK, apitype.WhoAmI{User: d.User.Name, Roles: d.User.Roles, Device: d.Device.ID, SPIFFEID: d.ID,
		Trust: c.Trust, Expires: d.Expires, Via: "mTLS"})
	return nil
}

func (s *server) login(w http.ResponseWriter, r *http.Request) error {
	var req apitype.LoginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	setDetail(r, "user "+req.User+", device "+req.Device)
	auth, err := s.cfg.Identity.Authenticate(r.Context(), identity.Login{User: req.User, Password: req.Password, Code: req.Code, Addr: remoteIP(r)})
	if err != nil {
		return err
	}
	cert, err := s.cfg.Identity.Enroll(r.Context(), auth, req.Device, req.CSR)
	if err != nil {
		return err
	}
	setDetail(r, "user "+req.User+" registered device "+cert.Device.ID+" ("+req.Device+")")
	writeJSON(w, http.StatusOK, s.deviceCert(cert))
	return nil
}

func (s *server) renew(w http.ResponseWriter, r *http.Request) error {
	dev, ok := r.Context().Value(deviceKey{}).(identity.DeviceIdentity)
	if !ok {
		return errkind.WithHint(errkind.Invalid, errkind.Errorf(errkind.Invalid, "renewing needs the device's certificate"), "renew over NOOPS_URL")
	}
	var req apitype.RenewRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	cert, err := s.cfg.Identity.Renew(r.Context(), dev, req.CSR)
	if err != nil {
		return err
	}
	setDetail(r, "device "+dev.Device.ID+" renewed its certificate until "+cert.Expiry.UTC().Format("15:04:05 MST"))
	writeJSON(w, http.StatusOK, s.deviceCert(cert))
	return nil
}

func (s *server) deviceCert(c identity.Certificate) apitype.DeviceCert {
	pemOf := func(der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	out := apitype.DeviceCert{Device: deviceOut(c.Device), SPIFFEID: c.ID, CertPEM: pemOf(c.Leaf) + pemOf(c.Chain), Expires: c.Expiry}
	if s.cfg.CARoot != nil {
		out.RootPEM = string(s.cfg.CARoot())
	}
	return out
}

func (s *server) users(w http.ResponseWriter, r *http.Request) error {
	us, err := s.cfg.Identity.Users(r.Context())
	if err != nil {
		return err
	}
	out := make([]apitype.User, len(us))
	for i, u := range us {
		out[i] = userOut(u)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) addUser(w http.ResponseWriter, r *http.Request) error {
	var req apitype.UserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	setDetail(r, "user "+req.Name+" roles "+joinRoles(req.Roles))
	u, err := s.cfg.Identity.AddUser(r.Context(), req.Name, req.Password, req.Roles)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, userOut(u))
	return nil
}

func (s *server) changeUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("user")
	var req apitype.UserChange
	if err := decode(r, &req); err != nil {
		return err
	}
	var u store.User
	var err error
	var did []string
	if req.Password != nil {
		if u, err = s.cfg.Identity.SetPassword(r.Context(), name, *req.Password); err != nil {
			return err
		}
		did = append(did, "password set")
	}
	if req.Roles != nil {
		if u, err = s.cfg.Identity.SetRoles(r.Context(), name, *req.Roles); err != nil {
			return err
		}
		did = append(did, "roles "+joinRoles(*req.Roles))
	}
	if req.Disabled != nil {
		if u, err = s.cfg.Identity.SetDisabled(r.Context(), name, *req.Disabled); err != nil {
			return err
		}
		did = append(did, map[bool]string{true: "disabled", false: "enabled"}[*req.Disabled])
	}
	if req.ResetTOTP {
		if err := s.cfg.Identity.ResetTOTP(r.Context(), name); err != nil {
			return err
		}
		if u, err = s.cfg.Identity.User(r.Context(), name); err != nil {
			return err
		}
		did = append(did, "TOTP reset")
	}
	if req.ResetPasskeys {
		if err := s.cfg.Identity.ResetPasskeys(r.Context(), name); err != nil {
			return err
		}
		if u, err = s.cfg.Identity.User(r.Context(), name); err != nil {
			return err
		}
		did = append(did, "passkeys removed")
	}
	if len(did) == 0 {
		return errkind.Errorf(errkind.Invalid, "nothing to change: give disabled, roles, password, reset_totp or reset_passkeys")
	}
	setDetail(r, joinRoles(did))
	writeJSON(w, http.StatusOK, userOut(u))
	return nil
}

func (s *server) enrollTOTP(w http.ResponseWriter, r *http.Request) error {
	e, err := s.cfg.Identity.EnrollTOTP(r.Context(), r.PathValue("user"))
	if err != nil {
		return err
	}
	setDetail(r, "TOTP enrolment started (secret not recorded)")
	writeJSON(w, http.StatusOK, apitype.TOTPEnrolment{URI: e.URI, Secret: e.Secret, QRPNG: e.QR})
	return nil
}

func (s *server) confirmTOTP(w http.ResponseWriter, r *http.Request) error {
	var req apitype.CodeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.cfg.Identity.ConfirmTOTP(r.Context(), r.PathValue("user"), req.Code); err != nil {
		return err
	}
	setDetail(r, "TOTP on")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) devices(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.cfg.Identity.Devices(r.Context(), r.URL.Query().Get("user"))
	if err != nil {
		return err
	}
	out := make([]apitype.Device, len(ds))
	for i, d := range ds {
		out[i] = deviceOut(d)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	var req apitype.RevokeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Reason == "" {
		req.Reason = "revoked by " + actor(r)
	}
	d, err := s.cfg.Identity.Revoke(r.Context(), r.PathValue("device"), req.Reason)
	if err != nil {
		return err
	}
	setDetail(r, "device "+d.ID+" of "+d.User+": "+req.Reason)
	writeJSON(w, http.StatusOK, deviceOut(d))
	return nil
}

func userOut(u store.User) apitype.User {
	totp := "off"
	switch {
	case u.TOTPSecret != "" && u.TOTPPending:
		totp = "pending"
	case u.TOTPSecret != "":
		totp = "on"
	}
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return apitype.User{Name: u.Name, Created: u.Created, Disabled: u.Disabled, Roles: roles, TOTP: totp, Passkeys: countJSONArray(u.Passkeys),
		FailedLogins: u.FailedLogins, LockedUntil: u.LockedUntil, LastLogin: u.LastLogin}
}

func deviceOut(d store.Device) apitype.Device {
	return apitype.Device{ID: d.ID, User: d.User, Name: d.Name, Created: d.Created, LastSeen: d.LastSeen, Revoked: d.Revoked,
		RevokeReason: d.RevokeReason, CertExpires: d.CertExpires}
}

func joinRoles(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ", "
		}
		out += r
	}
	return out
}

// remoteIP is the caller's IP address ("" over the Unix socket).
func remoteIP(r *http.Request) string {
	if i := lastColon(r.RemoteAddr); i > 0 {
		h := r.RemoteAddr[:i]
		if len(h) > 1 && h[0] == '[' {
			h = h[1 : len(h)-1]
		}
		return h
	}
	return "local"
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

// countJSONArray counts the elements of a JSON array, 0 for anything else.
func countJSONArray(raw []byte) int {
	var v []any
	if json.Unmarshal(raw, &v) != nil {
		return 0
	}
	return len(v)
}
