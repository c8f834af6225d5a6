package store

import (
	"context"
	"time"
)

// Ban is a client address range refused at the gateway's door. A record
// outlives its ban: once lifted (expired or removed) it is kept for the
// recidive window, so that a prefix banned again is banned for longer.
type Ban struct {
	Prefix   string    // canonical netip.Prefix string ("203.0.113.7/32", "2001:db8::/64"); the key
	Reason   string    // human text ("flood: 3000 requests in 10s")
	Trigger  string    // "flood", "waf", "login", "garbage", "slow", "rate:<rule>", "manual"
	By       string    // "auto" or the admin's name
	Created  time.Time // zero means now
	Until    time.Time // zero = until removed
	Offences int       // how many times this prefix was banned (recidive escalation)
	Lifted   time.Time // when it expired or was removed (zero while active); lifted records are kept for the recidive window
}

// Bans is the part of the store that keeps the gateway's ban list, active
// bans and lifted ones alike. Prefix is the key: it must parse as a
// netip.Prefix and be in its canonical form (masked, as Prefix.String
// writes it), else the call is Invalid; Offences must not be negative.
type Bans interface {
	PutBan(ctx context.Context, b Ban) error                // insert or replace by Prefix
	GetBan(ctx context.Context, prefix string) (Ban, error) // NotFound when missing
	ListBans(ctx context.Context) ([]Ban, error)            // by Prefix (as text); active and lifted
	DeleteBan(ctx context.Context, prefix string) error     // forget the record; NotFound when missing
}
