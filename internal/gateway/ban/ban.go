// Package ban is the gateway's ban list: the client address ranges it
// refuses at accept, before TLS, and the triggers that fill it. Request
// handlers report misbehaviour with Strike (a WAF block, a failed sign-in,
// a malformed request, a slow client, a flood); a client that collects a
// rule's Count strikes within its Window is banned for the rule's Ban
// duration, doubled for each recent offence (a recidive rule, like
// fail2ban's recidive jail and Hiawatha's BanOn* settings). A rate limit
// rule bans at once with BanFor; an administrator bans and lifts by hand
// with Add and Remove.
//
// Banned is the hot path, asked at every accept: it takes no lock and does
// not allocate. The bans in force are immutable snapshots behind atomic
// pointers that writers replace: the single-address bans in 256 maps
// chosen by a seeded hash of the address, so that a ban copies one small
// map rather than all of them (with a single map, 10,000 bans in a row
// copied 50 million entries), and the wider prefixes in one short slice.
// An expired ban stops counting at once, before the janitor (Run) lifts
// it. Every ban is written to the Store after it is in force, so it
// survives a restart (Load). The allow list always wins: an allowed
// address is never banned, its strikes are not counted and Add refuses a
// prefix that covers it.
//
// The package keeps its own Ban and Store types, as the gateway does not
// import the store: Ban has the fields of store.Ban in the same order, so
// each converts to the other (store.Ban(b), ban.Ban(sb)) and the adapter
// that makes a store.Bans a Store is a few lines (see store_test.go).
package ban

import (
	"cmp"
	"context"
	"encoding/binary"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ban is a client address range refused at the gateway's door, active or
// lifted: the same fields as store.Ban.
type Ban struct {
	Prefix   string    // canonical netip.Prefix string ("203.0.113.7/32", "2001:db8::/64"); the key
	Reason   string    // human text ("flood: 3000 requests in 10s")
	Trigger  string    // "flood", "waf", "login", "garbage", "slow", "rate:<rule>", "manual"
	By       string    // "auto" or the admin's name
	Created  time.Time // when the ban was imposed
	Until    time.Time // zero = until removed
	Offences int       // how many times this prefix was banned (recidive escalation)
	Lifted   time.Time // when it expired or was removed (zero while active); lifted records are kept for the recidive window
}

// Store keeps the ban records, active and lifted. store.Bans is one,
// through the conversion of Ban: PutBan replaces by Prefix, DeleteBan of a
// missing prefix is an errkind.NotFound error.
type Store interface {
	PutBan(ctx context.Context, b Ban) error
	ListBans(ctx context.Context) ([]Ban, error)
	DeleteBan(ctx context.Context, prefix string) error
}

// Trigger is what a client did to be struck or banned.
type Trigger string

// The triggers. A rate limit rule's trigger is Rate(rule).
const (
	Flood   Trigger = "flood"   // too many requests or connections at once
	WAF     Trigger = "waf"     // a request the WAF blocked
	Login   Trigger = "login"   // a failed sign-in
	Garbage Trigger = "garbage" // a request that is not HTTP, or a TLS handshake that failed
	Slow    Trigger = "slow"    // a client too slow to send its request (slowloris)
	Manual  Trigger = "manual"  // an administrator's ban (Add)
)

// Rate returns the trigger of the rate limit rule named rule: "rate:<rule>".
func Rate(rule string) Trigger { return Trigger("rate:" + rule) }

// Rule is when strikes become a ban: Count strikes within Window ban the
// client for Ban (the base duration, before escalation). A rule with a
// Count below 1 or no Ban turns its trigger off.
type Rule struct {
	Count  int
	Window time.Duration
	Ban    time.Duration
}

// DefaultRules returns the rules of the triggers that Config.Rules leaves
// out (like Hiawatha's BanOn* defaults). Flood bans at the first strike:
// the gateway's flood counter strikes once when a client floods.
func DefaultRules() map[Trigger]Rule {
	return map[Trigger]Rule{
		WAF:     {Count: 5, Window: 5 * time.Minute, Ban: 10 * time.Minute},
		Login:   {Count: 10, Window: 10 * time.Minute, Ban: 15 * time.Minute},
		Garbage: {Count: 10, Window: time.Minute, Ban: 10 * time.Minute},
		Slow:    {Count: 10, Window: time.Minute, Ban: 5 * time.Minute},
		Flood:   {Count: 1, Window: time.Minute, Ban: time.Minute},
	}
}

// Defaults of Config.
const (
	DefaultMaxBan   = 7 * 24 * time.Hour
	DefaultRecidive = 7 * 24 * time.Hour
)

// Bounds of the list's work.
const (
	maxStrikeAddrs = 100_000         // addresses whose strikes are counted; the oldest are dropped
	janitorEvery   = time.Second     // how often Run lifts expired bans
	storeTimeout   = 2 * time.Second // longest a ban of Strike or BanFor waits for the store
)

// Config is what a List needs. Everything is optional.
type Config struct {
	Store Store // nil keeps the bans in memory only
	// Allow always wins: its addresses are never banned, their strikes
	// are ignored and Add refuses a prefix that covers one.
	Allow    []netip.Prefix
	Rules    map[Trigger]Rule // DefaultRules() for the missing ones
	MaxBan   time.Duration    // cap of escalation; default DefaultMaxBan
	Recidive time.Duration    // how long a lifted ban counts for escalation; default DefaultRecidive
	// OnBan is called after a ban is stored (the gateway closes the
	// client's connections, an event goes out), OnLift when a ban expires
	// or is removed. They are called without any lock of the list held,
	// from the goroutine that banned or lifted.
	OnBan  func(Ban)
	OnLift func(Ban)
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// List is the ban list. Its methods are safe for concurrent use.
type List struct {
	store    Store
	allow    []netip.Prefix
	rules    map[Trigger]Rule
	maxBan   time.Duration
	recidive time.Duration
	onBan    func(Ban)
	onLift   func(Ban)
	log      *slog.Logger
	now      func() time.Time
	every    time.Duration // janitor period
	timeout  time.Duration // longest an automatic ban waits for the store
	maxAddrs int           // bound of the strike counters

	// The bans not lifted, for Banned: single addresses by shardOf, wider
	// prefixes most specific first.
	seed  uint64
	exact [shards]atomic.Pointer[shard]
	wide  atomic.Pointer[[]wideBan]

	mu      sync.Mutex // guards records and unsaved; held while publishing
	records map[netip.Prefix]Ban
	unsaved map[netip.Prefix]bool // prefixes whose store write failed: the janitor tries again

	writing chan struct{} // a token held while writing to the store: one write at a time

	smu     sync.Mutex // guards the strike counters
	strikes strikeTable
}

// shards is how many maps the single-address bans are spread over.
const shards = 256

// shard is an immutable map of single-address bans not lifted.
type shard struct{ m map[netip.Addr]*Ban }

type wideBan struct {
	prefix netip.Prefix
	ban    *Ban
}

// New returns a list with cfg's settings. Call Load to read the stored
// bans and Run to lift them when they expire.
func New(cfg Config) *List {
	l := &List{
		store:    cfg.Store,
		rules:    DefaultRules(),
		maxBan:   cmp.Or(cfg.MaxBan, DefaultMaxBan),
		recidive: cmp.Or(cfg.Recidive, DefaultRecidive),
		onBan:    cfg.OnBan,
		onLift:   cfg.OnLift,
		log:      cfg.Logger,
		now:      cfg.Now,
		every:    janitorEvery,
		timeout:  storeTimeout,
		maxAddrs: maxStrikeAddrs,
		records:  map[netip.Prefix]Ban{},
		unsaved:  map[netip.Prefix]bool{},
		seed:     rand.Uint64(),
		writing:  make(chan struct{}, 1),
	}
	for t, r := range cfg.Rules {
		l.rules[t] = r
	}
	if l.onBan == nil {
		l.onBan = func(Ban) {}
	}
	if l.onLift == nil {
		l.onLift = func(Ban) {}
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	for _, p := range cfg.Allow {
		c, err := canonical(p)
		if err != nil {
			l.log.Warn("ignoring an allow-listed prefix", "prefix", p, "err", err)
			continue
		}
		l.allow = append(l.allow, c)
	}
	l.strikes.init()
	l.wide.Store(&[]wideBan{})
	return l
}

// Banned reports whether a is banned, and by which ban. An expired ban no
// longer counts, even before the janitor lifts it; an allowed address is
// never banned. An IPv4-mapped IPv6 address is its IPv4 address.
func (l *List) Banned(a netip.Addr) (Ban, bool) {
	a = a.Unmap()
	var now time.Time
	var b *Ban
	if s := l.exact[l.shardOf(a)].Load(); s != nil {
		if b = s.m[a]; b != nil {
			now = l.now()
			if !inForce(*b, now) {
				b = nil
			}
		}
	}
	wide := *l.wide.Load()
	for i := 0; b == nil && i < len(wide); i++ {
		if wide[i].prefix.Contains(a) {
			if now.IsZero() {
				now = l.now()
			}
			if inForce(*wide[i].ban, now) {
				b = wide[i].ban
			}
		}
	}
	if b == nil || l.Allowed(a) {
		return Ban{}, false
	}
	return *b, true
}

// Allowed reports whether a is on the allow list.
func (l *List) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Active returns the bans in force, by prefix.
func (l *List) Active() []Ban {
	now := l.now()
	out := []Ban{}
	l.mu.Lock()
	for _, b := range l.records {
		if active(b, now) {
			out = append(out, b)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b Ban) int { return cmp.Compare(a.Prefix, b.Prefix) })
	return out
}

// inForce reports whether b, a ban not lifted, has not expired at now.
func inForce(b Ban, now time.Time) bool {
	return b.Until.IsZero() || now.Before(b.Until)
}

// active reports whether b is in force at now: neither lifted nor expired.
func active(b Ban, now time.Time) bool {
	return b.Lifted.IsZero() && inForce(b, now)
}

// liftedAt returns when b stopped counting: when it was lifted or, for a
// ban the janitor has not lifted yet, when it expired. It is only
// meaningful for a ban that is not active.
func liftedAt(b Ban) time.Time {
	if !b.Lifted.IsZero() {
		return b.Lifted
	}
	return b.Until
}

// shardOf returns the shard of the single-address bans that holds a's.
func (l *List) shardOf(a netip.Addr) int {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0xff51afd7ed558ccd ^ binary.LittleEndian.Uint64(b[8:]) ^ l.seed
	return int((h * 0x9e3779b97f4a7c15) >> 56)
}

// publish makes what l.records holds for ps what Banned sees: a ban not
// lifted is in force, anything else is not. It copies the maps of the
// shards ps fall in and, when one of ps is wider than an address, the
// slice of wide bans. The caller holds l.mu.
func (l *List) publish(ps ...netip.Prefix) {
	var touched [shards][]netip.Prefix
	wide := false
	for _, p := range ps {
		if p.IsSingleIP() {
			i := l.shardOf(p.Addr())
			touched[i] = append(touched[i], p)
		} else {
			wide = true
		}
	}
	for i, ps := range touched {
		if len(ps) == 0 {
			continue
		}
		m := map[netip.Addr]*Ban{}
		if s := l.exact[i].Load(); s != nil {
			m = maps.Clone(s.m)
		}
		for _, p := range ps {
			if b, ok := l.records[p]; ok && b.Lifted.IsZero() {
				m[p.Addr()] = &b
			} else {
				delete(m, p.Addr())
			}
		}
		l.exact[i].Store(&shard{m})
	}
	if wide {
		var ws []wideBan
		for p, b := range l.records {
			if !p.IsSingleIP() && b.Lifted.IsZero() {
				ws = append(ws, wideBan{p, &b})
			}
		}
		slices.SortFunc(ws, func(a, b wideBan) int { return cmp.Compare(b.prefix.Bits(), a.prefix.Bits()) })
		l.wide.Store(&ws)
	}
}
