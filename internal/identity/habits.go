package identity

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"sort"
	"time"

	"noops/internal/store"
)

// habits is what the service learned of a user at successful sign-ins:
// the networks they came from (an IPv4 /24 or an IPv6 /64, with when it
// was first and last seen) and how many sign-ins fell in each hour of the
// day (UTC).
type habits struct {
	Networks map[string]seen `json:"networks,omitempty"`
	Hours    [24]int         `json:"hours"`
}

// seen is when a network was first and last seen, Unix seconds.
type seen struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

// Bounds of what is learned.
const (
	maxNetworks = 32 // the least recently seen is forgotten first
	// knownAfter is how long a network must have been seen before it
	// counts as known: a sign-in does not vouch for itself.
	knownAfter = 24 * time.Hour
	// usualAfter is how many sign-ins it takes before hours mean anything.
	usualAfter = 5
)

func readHabits(raw json.RawMessage) habits {
	var h habits
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &h) // what cannot be read is learned again
	}
	if h.Networks == nil {
		h.Networks = map[string]seen{}
	}
	return h
}

// network returns the prefix that stands for addr's network, or "".
func network(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	p, ok := networkOf(ip)
	if !ok {
		return ""
	}
	return p.String()
}

// networkOf is addr's /24 (IPv4) or /64 (IPv6).
func networkOf(ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap()
	bits := 24
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil && ip.IsValid()
}

// learn records a successful sign-in from addr at t.
func learn(raw json.RawMessage, addr string, t time.Time) json.RawMessage {
	h := readHabits(raw)
	if n := network(addr); n != "" {
		s, ok := h.Networks[n]
		if !ok {
			s.First = t.Unix()
		}
		s.Last = t.Unix()
		h.Networks[n] = s
	}
	if len(h.Networks) > maxNetworks {
		type entry struct {
			net  string
			last int64
		}
		all := make([]entry, 0, len(h.Networks))
		for n, s := range h.Networks {
			all = append(all, entry{n, s.Last})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].last < all[j].last })
		for _, e := range all[:len(all)-maxNetworks] {
			delete(h.Networks, e.net)
		}
	}
	h.Hours[t.UTC().Hour()]++
	out, _ := json.Marshal(h)
	return out
}

// Place says what the habits make of a request from addr at t.
type Place struct {
	KnownNetwork bool // addr is in a network the user has signed in from for a day or more
	NewLocation  bool // the user has known networks and never signed in from addr's
	UsualHours   bool // the user often signs in at this hour (or the next or previous)
}

// PlaceOf judges a request of a user whose habits are raw from addr at t.
func PlaceOf(raw json.RawMessage, addr string, t time.Time) Place {
	return readHabits(raw).place(addr, t)
}

func (h habits) place(addr string, t time.Time) Place {
	var p Place
	if n := network(addr); n != "" {
		cut := t.Add(-knownAfter).Unix()
		s, seenHere := h.Networks[n]
		p.KnownNetwork = seenHere && s.First <= cut
		if !seenHere {
			for _, o := range h.Networks {
				if o.First <= cut {
					p.NewLocation = true
					break
				}
			}
		}
	}
	p.UsualHours = h.usual(t)
	return p
}

// usual reports whether t falls in an hour (or next to one) the user
// signed in at, once there were enough sign-ins to tell.
func (h habits) usual(t time.Time) bool {
	total := 0
	for _, c := range h.Hours {
		total += c
	}
	if total < usualAfter {
		return false
	}
	hr := t.UTC().Hour()
	return h.Hours[hr]+h.Hours[(hr+1)%24]+h.Hours[(hr+23)%24] > 0
}

// Place judges a request of u from addr at t as PlaceOf does, with u's
// habits decoded once and kept while they do not change: it runs on every
// request.
func (s *Service) Place(u store.User, addr netip.Addr, t time.Time) Place {
	s.mu.Lock()
	c, ok := s.habits[u.Name]
	s.mu.Unlock()
	if !ok || !bytes.Equal(c.raw, u.Habits) {
		h := readHabits(u.Habits)
		c = parsedHabits{raw: u.Habits, h: h, nets: make(map[netip.Prefix]seen, len(h.Networks))}
		for n, sn := range h.Networks {
			if p, err := netip.ParsePrefix(n); err == nil {
				c.nets[p] = sn
			}
		}
		s.mu.Lock()
		if len(s.habits) >= maxCerts {
			clear(s.habits)
		}
		s.habits[u.Name] = c
		s.mu.Unlock()
	}
	var p Place
	if pfx, ok := networkOf(addr); ok {
		cut := t.Add(-knownAfter).Unix()
		sn, seenHere := c.nets[pfx]
		p.KnownNetwork = seenHere && sn.First <= cut
		if !seenHere {
			for _, o := range c.nets {
				if o.First <= cut {
					p.NewLocation = true
					break
				}
			}
		}
	}
	p.UsualHours = c.h.usual(t)
	return p
}

type parsedHabits struct {
	raw  json.RawMessage
	h    habits
	nets map[netip.Prefix]seen
}
