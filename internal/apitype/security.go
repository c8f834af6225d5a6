package apitype

import "time"

// Ban is a client range the gateway refuses at its door.
type Ban struct {
	Prefix   string    `json:"prefix"`
	Reason   string    `json:"reason"`
	Trigger  string    `json:"trigger"` // flood, waf, login, garbage, slow, rate:<rule>, manual
	By       string    `json:"by"`      // "auto" or who added it
	Created  time.Time `json:"created"`
	Until    time.Time `json:"until,omitzero"` // zero: until removed
	Offences int       `json:"offences"`
	Lifted   time.Time `json:"lifted,omitzero"`
}

// BanRequest bans a client (POST /v1/bans) or lifts a ban (POST
// /v1/bans/remove, Prefix only).
type BanRequest struct {
	Prefix   string `json:"prefix"`             // an IP or a CIDR
	Duration string `json:"duration,omitempty"` // a Go duration ("10m", "24h"); "" or "0": until removed
	Reason   string `json:"reason,omitempty"`
}
