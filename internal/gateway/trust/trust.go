// Package trust computes the trust score of a request: an additive,
// explainable sum of signals about how the user proved who they are, from
// which device, from where and when. Every point of a score is one named
// signal with a reason, so a refusal can say exactly what was missing.
//
// The package is pure: the caller gathers the facts (Input) and gets a
// Score; nothing here reads a clock, a store or the network.
package trust

import (
	"strconv"
	"strings"
	"time"
)

// Signal names one contribution to a score. The names are also the
// attributes of context.signals in Cedar policies.
type Signal string

// The signals, positive then negative.
const (
	Password     Signal = "password"      // the user gave the right password
	SecondFactor Signal = "second_factor" // and a TOTP code or a passkey
	DeviceCert   Signal = "device_cert"   // the request came with a valid device certificate
	DeviceAge    Signal = "device_age"    // from a device known for a while
	KnownNetwork Signal = "known_network" // from a network the user signed in from before
	UsualHours   Signal = "usual_hours"   // at an hour the user is usually active
	NewLocation  Signal = "new_location"  // from a network never seen for this user
	WAFHits      Signal = "waf_hits"      // the client tripped the WAF recently
	FailedLogins Signal = "failed_logins" // wrong passwords or codes recently
)

// Signals lists every signal in a fixed order.
var Signals = []Signal{Password, SecondFactor, DeviceCert, DeviceAge, KnownNetwork, UsualHours, NewLocation, WAFHits, FailedLogins}

// Input is what is known about a request.
type Input struct {
	Password     bool
	SecondFactor bool
	DeviceCert   bool
	DeviceAge    time.Duration // how long the device has been registered; 0 without one
	KnownNetwork bool
	UsualHours   bool
	NewLocation  bool
	WAFHits      int // in the recent window
	FailedLogins int // in the recent window
}

// Weights are the points of each signal. The zero value is not useful:
// start from Default.
type Weights struct {
	Password, SecondFactor, DeviceCert int
	DeviceAge                          int
	DeviceAgeAfter                     time.Duration // a device older than this earns DeviceAge
	KnownNetwork, UsualHours           int
	NewLocation                        int // a penalty: negative
	WAFHit, WAFHitsCap                 int // per hit, and the most all hits take (negative)
	FailedLogin, FailedLoginsCap       int
}

// Default are the weights the platform uses: password, second factor and
// device certificate +10 each; a device older than 7 days, a known network
// and usual hours +5 each; a new location −10; −5 per recent WAF hit (at
// most −20) and per failed login (at most −15).
var Default = Weights{
	Password: 10, SecondFactor: 10, DeviceCert: 10,
	DeviceAge: 5, DeviceAgeAfter: 7 * 24 * time.Hour,
	KnownNetwork: 5, UsualHours: 5,
	NewLocation: -10,
	WAFHit:      -5, WAFHitsCap: -20,
	FailedLogin: -5, FailedLoginsCap: -15,
}

// Max is the highest score; scores are clamped to 0..Max.
const Max = 100

// Part is one signal's contribution.
type Part struct {
	Signal Signal
	Points int
}

// Score is a request's trust: Total and the parts it is the sum of
// (before clamping), in Signals order, only the non-zero ones.
type Score struct {
	Total int
	Parts []Part
}

// Score computes the score of in.
func (w Weights) Score(in Input) Score {
	s := Score{Parts: make([]Part, 0, len(Signals))}
	add := func(sig Signal, on bool, pts int) {
		if on && pts != 0 {
			s.Parts = append(s.Parts, Part{sig, pts})
			s.Total += pts
		}
	}
	add(Password, in.Password, w.Password)
	add(SecondFactor, in.SecondFactor, w.SecondFactor)
	add(DeviceCert, in.DeviceCert, w.DeviceCert)
	add(DeviceAge, in.DeviceCert && in.DeviceAge >= w.DeviceAgeAfter, w.DeviceAge)
	add(KnownNetwork, in.KnownNetwork, w.KnownNetwork)
	add(UsualHours, in.UsualHours, w.UsualHours)
	add(NewLocation, in.NewLocation, w.NewLocation)
	add(WAFHits, in.WAFHits > 0, max(in.WAFHits*w.WAFHit, w.WAFHitsCap))
	add(FailedLogins, in.FailedLogins > 0, max(in.FailedLogins*w.FailedLogin, w.FailedLoginsCap))
	s.Total = min(max(s.Total, 0), Max)
	return s
}

// Points returns what sig contributed, 0 when it did not.
func (s Score) Points(sig Signal) int {
	for _, p := range s.Parts {
		if p.Signal == sig {
			return p.Points
		}
	}
	return 0
}

// String explains the score: "20 (password +10, second_factor +10)".
func (s Score) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(s.Total))
	b.WriteString(" (")
	if len(s.Parts) == 0 {
		b.WriteString("no signals")
	}
	for i, p := range s.Parts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(p.Signal))
		if p.Points > 0 {
			b.WriteByte(' ')
			b.WriteByte('+')
		} else {
			b.WriteString(" −")
		}
		b.WriteString(strconv.Itoa(abs(p.Points)))
	}
	b.WriteByte(')')
	return b.String()
}

// Missing names the positive signals that in lacked, with their points:
// what a refused user could add ("second_factor +10, device_cert +10").
func (w Weights) Missing(in Input) string {
	var out []string
	add := func(sig Signal, have bool, pts int) {
		if !have && pts > 0 {
			out = append(out, string(sig)+" +"+strconv.Itoa(pts))
		}
	}
	add(Password, in.Password, w.Password)
	add(SecondFactor, in.SecondFactor, w.SecondFactor)
	add(DeviceCert, in.DeviceCert, w.DeviceCert)
	return strings.Join(out, ", ")
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
