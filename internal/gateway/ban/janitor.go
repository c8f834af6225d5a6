package ban

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Load adds the stored bans to the list; call it once, before the
// gateway accepts. A ban that expired while the gateway was down is
// lifted (and told to OnLift); lifted records are kept for escalation. A
// record whose prefix is not canonical is skipped with a warning.
func (l *List) Load(ctx context.Context) error {
	if l.store == nil {
		return nil
	}
	recs, err := l.store.ListBans(ctx)
	if err != nil {
		return fmt.Errorf("loading bans: %w", err)
	}
	now := l.now()
	var expired []Ban
	var loaded []netip.Prefix
	l.mu.Lock()
	for _, b := range recs {
		p, err := netip.ParsePrefix(b.Prefix)
		if err == nil {
			if c, cerr := canonical(p); cerr != nil || c != p {
				err = errors.New("not in canonical form")
			}
		}
		if err != nil {
			l.log.Warn("skipping a stored ban", "prefix", b.Prefix, "err", err)
			continue
		}
		if b.Lifted.IsZero() && !inForce(b, now) {
			b.Lifted = b.Until
			expired = append(expired, b)
		}
		l.records[p] = b
		loaded = append(loaded, p)
	}
	l.publish(loaded...)
	l.mu.Unlock()

	var errs []error
	for _, b := range expired {
		if err := l.persist(ctx, netip.MustParsePrefix(b.Prefix)); err != nil {
			errs = append(errs, fmt.Errorf("lifting the expired ban of %s: %w", b.Prefix, err))
		}
		l.lifted(b)
	}
	return errors.Join(errs...)
}

// Run is the janitor: every second it lifts the bans that expired (and
// tells OnLift), forgets the lifted records older than the recidive
// window and the strikes older than their rule's window. It returns when
// ctx ends.
func (l *List) Run(ctx context.Context) {
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.sweep(ctx)
		}
	}
}

// sweep is one round of the janitor. It also writes the prefixes whose
// store write failed before. After a store error it leaves the rest of
// the round's writes to the next round, so that a store that is down
// does not hold the janitor up.
func (l *List) sweep(ctx context.Context) {
	now := l.now()
	var expired []Ban
	var changed []netip.Prefix
	l.mu.Lock()
	for p, b := range l.records {
		switch {
		case b.Lifted.IsZero() && !inForce(b, now):
			b.Lifted = b.Until
			l.records[p] = b
			expired = append(expired, b)
			changed = append(changed, p)
		case !b.Lifted.IsZero() && now.Sub(b.Lifted) >= l.recidive:
			delete(l.records, p)
			changed = append(changed, p)
		}
	}
	l.publish(changed...)
	for p := range l.unsaved {
		changed = append(changed, p)
	}
	l.mu.Unlock()

	for i, p := range changed {
		sctx, cancel := context.WithTimeout(ctx, l.timeout)
		err := l.persist(sctx, p)
		cancel()
		if err != nil {
			l.log.Error("storing bans; the janitor tries again", "prefix", p, "left", len(changed)-i-1, "err", err)
			l.mu.Lock()
			for _, p := range changed[i+1:] {
				l.unsaved[p] = true
			}
			l.mu.Unlock()
			break
		}
	}
	for _, b := range expired {
		l.lifted(b)
	}

	l.smu.Lock()
	l.strikes.prune(now, l.rules)
	l.smu.Unlock()
}
