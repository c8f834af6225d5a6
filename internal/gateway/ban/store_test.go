package ban

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"noops/internal/store"
	"noops/internal/store/sqlite"
)

// storeBans is the adapter that makes a store.Bans a Store; internal/app
// wires the real one the same way. Ban and store.Ban convert.
type storeBans struct{ s store.Bans }

func (a storeBans) PutBan(ctx context.Context, b Ban) error { return a.s.PutBan(ctx, store.Ban(b)) }

func (a storeBans) DeleteBan(ctx context.Context, prefix string) error {
	return a.s.DeleteBan(ctx, prefix)
}

func (a storeBans) ListBans(ctx context.Context) ([]Ban, error) {
	bans, err := a.s.ListBans(ctx)
	out := make([]Ban, len(bans))
	for i, b := range bans {
		out[i] = Ban(b)
	}
	return out, err
}

// openStore opens a sqlite state database in a temporary folder.
func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openStore(t)
	c := &clock{t: t0}
	open := func() (*List, *recorder) {
		r := &recorder{}
		l := New(Config{Store: storeBans{db}, Now: c.Now, OnBan: r.onBan, OnLift: r.onLift})
		if err := l.Load(ctx); err != nil {
			t.Fatalf("Load: %v", err)
		}
		return l, r
	}

	l, _ := open()
	flood, _ := l.Strike(addr, Flood, "3000 requests in 10s")
	short, _ := l.BanFor(other, Rate("api"), "", time.Second)
	net6, err := l.Add(ctx, netip.MustParsePrefix("2001:db8::/64"), 0, "scanning", "ana")
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	stored, err := db.GetBan(ctx, "203.0.113.7/32")
	if err != nil || Ban(stored) != flood {
		t.Errorf("GetBan(203.0.113.7/32) = %+v, %v; want %+v", stored, err, flood)
	}

	// A restart: the bans are back; the one that expired meanwhile is
	// lifted (in the store too) and told to OnLift.
	c.Add(time.Second)
	l, r := open()
	wantBanned(t, l, addr, true)
	wantBanned(t, l, netip.MustParseAddr("2001:db8::1"), true)
	wantBanned(t, l, other, false)
	if got := l.Active(); len(got) != 2 || got[0] != net6 || got[1] != flood {
		t.Errorf("Active() after Load = %+v, want [%+v %+v]", got, net6, flood)
	}
	short.Lifted = short.Until
	if r.lifts == nil || r.lifts[0] != short || len(r.lifts) != 1 {
		t.Errorf("OnLift calls on Load = %+v, want [%+v]", r.lifts, short)
	}
	stored, err = db.GetBan(ctx, "203.0.113.8/32")
	if err != nil || Ban(stored) != short {
		t.Errorf("GetBan(203.0.113.8/32) after Load = %+v, %v; want %+v", stored, err, short)
	}

	// Remove and the janitor write through; the offence count survives
	// a restart, so a recidive escalates.
	if _, err := l.Remove(ctx, netip.MustParsePrefix("2001:db8::/64"), "bob"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	c.Add(time.Minute)
	l.sweep(ctx)
	l, _ = open()
	if got := l.Active(); len(got) != 0 {
		t.Errorf("Active() after Remove, expiry and a restart = %+v, want none", got)
	}
	b, _ := l.Strike(addr, Flood, "")
	if b.Offences != 2 || b.Until.Sub(b.Created) != 2*time.Minute {
		t.Errorf("flood after a restart = %+v, want offence 2 for 2m", b)
	}
	c.Add(8 * 24 * time.Hour)
	l.sweep(ctx) // lifts 203.0.113.7
	c.Add(8 * 24 * time.Hour)
	l.sweep(ctx) // forgets every record
	all, err := db.ListBans(ctx)
	if err != nil || len(all) != 0 {
		t.Errorf("ListBans() after the recidive window = %+v, %v; want none", all, err)
	}
}

// flaky is a Store whose writes fail while down is set.
type flaky struct {
	Store
	down atomic.Bool
}

var errDown = errors.New("disk on fire")

func (f *flaky) PutBan(ctx context.Context, b Ban) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.PutBan(ctx, b)
}

func TestStoreErrors(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	st := &flaky{Store: storeBans{db}}
	st.down.Store(true)
	l, c, r := newList(t, func(cfg *Config) { cfg.Store = st })
	ctx := t.Context()
	// Bans are in force and told to OnBan all the same.
	if _, banned := l.Strike(addr, Flood, ""); !banned {
		t.Fatalf("Strike with a failing store = no ban, want one")
	}
	wantBanned(t, l, addr, true)
	b, err := l.Add(ctx, netip.MustParsePrefix("192.0.2.0/24"), time.Hour, "", "ana")
	if !errors.Is(err, errDown) || b.Prefix != "192.0.2.0/24" {
		t.Errorf("Add with a failing store = %+v, %v; want the ban and the store's error", b, err)
	}
	wantBanned(t, l, netip.MustParseAddr("192.0.2.1"), true)
	if bans, _ := r.counts(); bans != 2 {
		t.Errorf("OnBan called %d times, want 2", bans)
	}

	// The janitor writes them once the store is back.
	l.sweep(ctx)
	c.Add(time.Second)
	st.down.Store(false)
	l.sweep(ctx)
	stored, err := db.ListBans(ctx)
	if err != nil || len(stored) != 2 || stored[0].Prefix != "192.0.2.0/24" || stored[1].Prefix != "203.0.113.7/32" {
		t.Errorf("ListBans() after the store came back = %+v, %v; want both bans", stored, err)
	}
	if len(l.unsaved) != 0 {
		t.Errorf("unsaved after the store came back = %v, want none", l.unsaved)
	}
}

// hung is a Store whose writes wait for their context to end.
type hung struct{ Store }

func (hung) PutBan(ctx context.Context, _ Ban) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestHungStore(t *testing.T) {
	l, _, r := newList(t, func(cfg *Config) { cfg.Store = hung{} })
	l.timeout = 100 * time.Millisecond
	// Ten bans at once each wait for the store at most the timeout, not
	// one after the other (which would take a second).
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { l.BanFor(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Flood, "", time.Hour) })
	}
	wg.Wait()
	if d := time.Since(start); d > 800*time.Millisecond {
		t.Errorf("ten bans with a hung store took %v, want about the 100ms timeout", d)
	}
	if bans, _ := r.counts(); bans != 10 || len(l.Active()) != 10 {
		t.Errorf("OnBan calls, active bans with a hung store = %d, %d; want 10, 10", bans, len(l.Active()))
	}
}
