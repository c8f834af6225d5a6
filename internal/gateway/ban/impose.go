package ban

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"time"

	"noops/internal/errkind"
)

// BanFor bans a at once for base (escalated for a recidive), as a rate
// limit rule with a ban does; t says why. It returns the new ban and true,
// or, when a is already banned, the ban in force and false; an allowed or
// invalid address, or a base that is not positive, is not banned. The ban
// is in force before BanFor writes it to the store.
func (l *List) BanFor(a netip.Addr, t Trigger, reason string, base time.Duration) (Ban, bool) {
	a = a.Unmap()
	if !a.IsValid() || base <= 0 || l.Allowed(a) {
		return Ban{}, false
	}
	if b, banned := l.Banned(a); banned {
		return b, false
	}
	return l.auto(netip.PrefixFrom(a, a.BitLen()), t, reason, base)
}

// auto imposes an automatic ban of p and, when it is new, stores it and
// tells OnBan. A store error is logged: the ban stays in force.
func (l *List) auto(p netip.Prefix, t Trigger, reason string, base time.Duration) (Ban, bool) {
	b, isNew, expired := l.impose(p, t, reason, "auto", base, false)
	if !isNew {
		return b, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := l.persist(ctx, p); err != nil {
		l.log.Error("storing a ban; the janitor tries again", "prefix", b.Prefix, "err", err)
	}
	l.lifted(expired)
	l.banned(b)
	return b, true
}

// Add bans prefix for d (0: until removed), by the administrator by: a
// manual ban, not escalated, that replaces an active ban of the same
// prefix. An IPv4-mapped prefix is its IPv4 prefix and host bits are
// masked. A prefix that covers an allowed address is refused (Invalid). An
// error storing the ban is returned with the ban, which is in force all
// the same; the janitor tries to store it again.
func (l *List) Add(ctx context.Context, prefix netip.Prefix, d time.Duration, reason, by string) (Ban, error) {
	p, err := canonical(prefix)
	if err != nil {
		return Ban{}, fmt.Errorf("banning %s: %w", prefix, err)
	}
	if d < 0 {
		return Ban{}, errkind.Errorf(errkind.Invalid, "banning %s: the duration must not be negative, got %v", p, d)
	}
	if by == "" {
		return Ban{}, errkind.Errorf(errkind.Invalid, "banning %s: no administrator named", p)
	}
	for _, a := range l.allow {
		if a.Overlaps(p) {
			return Ban{}, errkind.Errorf(errkind.Invalid, "banning %s: it covers the allow-listed %s, which is never banned", p, a)
		}
	}
	b, _, expired := l.impose(p, Manual, reason, by, d, true)
	err = l.persist(ctx, p)
	l.lifted(expired)
	l.banned(b)
	if err != nil {
		return b, fmt.Errorf("storing the ban of %s (it is in force; storing it is retried): %w", p, err)
	}
	return b, nil
}

// Remove lifts the active ban of prefix (NotFound when there is none),
// for the administrator by, and calls OnLift. The lifted record is kept
// for the recidive window: the prefix's next ban still escalates. An
// error storing the lift is returned with the ban, lifted all the same;
// the janitor tries to store it again.
func (l *List) Remove(ctx context.Context, prefix netip.Prefix, by string) (Ban, error) {
	p, err := canonical(prefix)
	if err != nil {
		return Ban{}, fmt.Errorf("lifting the ban of %s: %w", prefix, err)
	}
	now := l.now()
	l.mu.Lock()
	b, ok := l.records[p]
	if !ok || !active(b, now) {
		l.mu.Unlock()
		return Ban{}, errkind.Errorf(errkind.NotFound, "no active ban of %s", p)
	}
	b.Lifted = now.UTC()
	l.records[p] = b
	l.publish(p)
	l.mu.Unlock()

	err = l.persist(ctx, p)
	l.log.Info("ban removed", "prefix", b.Prefix, "by", by)
	l.onLift(b)
	if err != nil {
		return b, fmt.Errorf("storing the lift of the ban of %s (it is lifted; storing it is retried): %w", p, err)
	}
	return b, nil
}

// impose records a ban of p in memory and publishes it, which makes it
// effective. An automatic ban (manual false) lasts base escalated for a
// recidive and does nothing when p is already banned: it returns that ban
// and false. A manual one lasts base (0: until removed) and replaces an
// active ban, keeping its offence count. expired is the ban of p that had
// expired but was not lifted yet, which the new one replaces (its Prefix
// is "" when there was none): the caller tells OnLift.
func (l *List) impose(p netip.Prefix, t Trigger, reason, by string, base time.Duration, manual bool) (b Ban, isNew bool, expired Ban) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, had := l.records[p]
	if had && active(prev, now) && !manual {
		return prev, false, Ban{}
	}
	if had && prev.Lifted.IsZero() && !inForce(prev, now) {
		expired = prev
		expired.Lifted = prev.Until
	}
	b = Ban{Prefix: p.String(), Reason: reason, Trigger: string(t), By: by, Created: now.UTC(), Offences: 1}
	switch {
	case had && active(prev, now): // a manual ban replacing one in force
		b.Offences = max(prev.Offences, 1)
	case had && now.Sub(liftedAt(prev)) < l.recidive:
		b.Offences = prev.Offences + 1
	}
	d := base
	if !manual {
		d = escalate(base, b.Offences, l.maxBan)
	}
	if d > 0 {
		b.Until = b.Created.Add(d)
	}
	l.records[p] = b
	l.publish(p)
	return b, true, expired
}

// escalate returns base × 2^(offences-1), capped at limit.
func escalate(base time.Duration, offences int, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < offences && d < limit && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	return min(d, limit)
}

// lifted logs a lifted ban and tells OnLift; it does nothing for a Ban
// without a Prefix.
func (l *List) lifted(b Ban) {
	if b.Prefix == "" {
		return
	}
	l.log.Info("ban lifted", "prefix", b.Prefix, "trigger", b.Trigger, "lifted", b.Lifted)
	l.onLift(b)
}

// banned logs a new ban and tells OnBan.
func (l *List) banned(b Ban) {
	l.log.Warn("client banned", "prefix", b.Prefix, "trigger", b.Trigger, "by", b.By,
		"until", b.Until, "offences", b.Offences, "reason", b.Reason)
	l.onBan(b)
}

// persist writes the record of p as it is now in memory to the store, or
// deletes it from there when the list has forgotten it. Writes are made
// one at a time and each writes the latest state, so the store ends up
// as the memory is, whatever order concurrent callers run in; waiting for
// its turn ends with ctx. A prefix that could not be written is marked
// unsaved, for the janitor to try again. l.mu is not held while the store
// works.
func (l *List) persist(ctx context.Context, p netip.Prefix) error {
	if l.store == nil {
		return nil
	}
	err := l.write(ctx, p)
	l.mu.Lock()
	if err != nil {
		l.unsaved[p] = true
	} else {
		delete(l.unsaved, p)
	}
	l.mu.Unlock()
	return err
}

// write is persist's store write.
func (l *List) write(ctx context.Context, p netip.Prefix) error {
	select {
	case l.writing <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting to store the ban of %s: %w", p, context.Cause(ctx))
	}
	defer func() { <-l.writing }()
	l.mu.Lock()
	b, ok := l.records[p]
	l.mu.Unlock()
	if ok {
		return l.store.PutBan(ctx, b)
	}
	if err := l.store.DeleteBan(ctx, p.String()); err != nil && !errkind.Is(err, errkind.NotFound) {
		return err
	}
	return nil
}

// canonical returns p in the form the list keys bans by: masked, an
// IPv4-mapped prefix as its IPv4 prefix, without a zone.
func canonical(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, errkind.Errorf(errkind.Invalid, "not a valid prefix")
	}
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return netip.Prefix{}, errkind.Errorf(errkind.Invalid, "IPv4-mapped prefix %s is wider than /96", p)
		}
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}
