package apitype

import "time"

// User is an account, without its secrets.
type User struct {
	Name         string    `json:"name"`
	Created      time.Time `json:"created"`
	Disabled     bool      `json:"disabled"`
	Roles        []string  `json:"roles"`
	TOTP         string    `json:"totp"` // "on", "pending" or "off"
	Passkeys     int       `json:"passkeys"`
	FailedLogins int       `json:"failed_logins"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	LastLogin    time.Time `json:"last_login,omitzero"`
}

// UserRequest creates a user (POST /v1/users).
type UserRequest struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
}

// UserChange changes a user (POST /v1/users/{user}); nil fields stay.
type UserChange struct {
	Disabled *bool     `json:"disabled,omitempty"`
	Roles    *[]string `json:"roles,omitempty"`
	Password *string   `json:"password,omitempty"`
	// ResetTOTP removes the user's TOTP (a lost authenticator).
	ResetTOTP bool `json:"reset_totp,omitempty"`
	// ResetPasskeys removes all the user's passkeys.
	ResetPasskeys bool `json:"reset_passkeys,omitempty"`
}

// TOTPEnrolment is a new TOTP secret to scan (POST /v1/users/{user}/totp).
type TOTPEnrolment struct {
	URI    string `json:"uri"`
	Secret string `json:"secret"`
	QRPNG  []byte `json:"qr_png"`
}

// CodeRequest carries a one-time code.
type CodeRequest struct {
	Code string `json:"code"`
}

// Device is a registered device.
type Device struct {
	ID           string    `json:"id"`
	User         string    `json:"user"`
	Name         string    `json:"name"`
	Created      time.Time `json:"created"`
	LastSeen     time.Time `json:"last_seen,omitzero"`
	Revoked      time.Time `json:"revoked,omitzero"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
	CertExpires  time.Time `json:"cert_expires,omitzero"`
}

// RevokeRequest revokes a device.
type RevokeRequest struct {
	Reason string `json:"reason"`
}

// LoginRequest signs a device in (POST /v1/login): the user's factors and
// a certificate request signed by the device's own key.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
	Code     string `json:"code,omitempty"`
	Device   string `json:"device"` // a name for the device
	CSR      []byte `json:"csr"`    // PKCS #10, DER
}

// RenewRequest asks for a new certificate for the calling device.
type RenewRequest struct {
	CSR []byte `json:"csr"`
}

// DeviceCert is a device's new certificate.
type DeviceCert struct {
	Device   Device    `json:"device"`
	SPIFFEID string    `json:"spiffe_id"`
	CertPEM  string    `json:"cert_pem"` // the leaf, then the intermediate
	RootPEM  string    `json:"root_pem"`
	Expires  time.Time `json:"expires"`
}

// WhoAmI is the caller as the API sees it.
type WhoAmI struct {
	User     string    `json:"user"`
	Roles    []string  `json:"roles,omitempty"`
	Device   string    `json:"device,omitempty"`
	SPIFFEID string    `json:"spiffe_id,omitempty"`
	Trust    int       `json:"trust"`
	Expires  time.Time `json:"cert_expires,omitzero"`
	Via      string    `json:"via"` // "admin socket" or "mTLS"
}
