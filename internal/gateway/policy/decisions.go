package policy

import (
	"net/netip"
	"strings"
	"sync"
)

// decisions remembers the decisions of a Set. Authorize is a pure
// function of the request's fields (time enters only as hour and
// weekday), so a request equal to one decided before gets the same
// decision from a map lookup instead of a Cedar evaluation: on keep-alive
// traffic nearly every request. The map is cleared when it is full, so it
// follows the traffic and stays bounded.
type decisions struct {
	mu sync.RWMutex
	m  map[decisionKey]Decision
}

// decisionsMax bounds the remembered decisions of one Set.
const decisionsMax = 8192

// decisionKey is every field Authorize reads.
type decisionKey struct {
	app, kind, name    string
	roles              string
	action, path, verb string
	mtls, device       string
	trust              int
	signals            [9]int8
	ip                 netip.Addr
	hour, weekday      int8
}

// key returns the key of r; ok is false when the trust score's parts do
// not fit the key (then r is decided without the memo).
func keyOf(r Request) (decisionKey, bool) {
	sig, ok := signalsKey(r.Trust)
	if !ok {
		return decisionKey{}, false
	}
	t := r.Time.UTC()
	k := decisionKey{app: r.App, kind: r.Principal.Kind, name: r.Principal.Name, action: r.Action, path: r.Path, verb: r.Verb,
		mtls: r.MTLS, device: r.Device, trust: r.Trust.Total, signals: sig, ip: r.SourceIP,
		hour: int8(t.Hour()), weekday: int8(t.Weekday())}
	switch len(r.Principal.Roles) {
	case 0:
	case 1:
		k.roles = r.Principal.Roles[0]
	default:
		k.roles = strings.Join(r.Principal.Roles, ",")
	}
	return k, true
}

func (d *decisions) get(k decisionKey) (Decision, bool) {
	d.mu.RLock()
	v, ok := d.m[k]
	d.mu.RUnlock()
	return v, ok
}

func (d *decisions) put(k decisionKey, v Decision) {
	d.mu.Lock()
	if d.m == nil || len(d.m) >= decisionsMax {
		d.m = make(map[decisionKey]Decision, 64)
	}
	d.m[k] = v
	d.mu.Unlock()
}
