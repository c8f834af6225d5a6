package storetest

import (
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

// A ban's Until and Lifted stay zero when zero (a permanent ban, an
// active one); a zero Created is now.

func checkBan(t *testing.T, call string, got, want store.Ban) {
	t.Helper()
	g, w := got, want
	g.Created, w.Created, g.Until, w.Until, g.Lifted, w.Lifted = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("%s = %+v, want %+v", call, g, w)
	}
	sameTime(t, call+".Created", got.Created, want.Created)
	sameTime(t, call+".Until", got.Until, want.Until)
	sameTime(t, call+".Lifted", got.Lifted, want.Lifted)
}

// checkBans checks that ListBans returns want, in order.
func checkBans(t *testing.T, s store.Store, want ...store.Ban) {
	t.Helper()
	got, err := s.ListBans(t.Context())
	ok(t, "ListBans()", err)
	if got == nil {
		t.Errorf("ListBans() = nil, want a non-nil list")
	}
	if len(got) != len(want) {
		var prefixes []string
		for _, b := range got {
			prefixes = append(prefixes, b.Prefix)
		}
		t.Fatalf("ListBans() = %q, want %d bans", prefixes, len(want))
	}
	for i := range want {
		checkBan(t, "ListBans()["+want[i].Prefix+"]", got[i], want[i])
	}
}

func testBans(t *testing.T, s store.Store) {
	ctx := t.Context()
	checkBans(t, s)

	flood := store.Ban{Prefix: "203.0.113.7/32", Reason: "flood: 3000 requests in 10s", Trigger: "flood", By: "auto",
		Created: t0, Until: t0.Add(time.Minute), Offences: 1}
	net6 := store.Ban{Prefix: "2001:db8::/64", Reason: "scanning", Trigger: "manual", By: "ana", Created: t0.Add(1)}
	lifted := store.Ban{Prefix: "192.0.2.0/24", Reason: "waf: 5 blocks in 5m0s", Trigger: "waf", By: "auto",
		Created: t0.Add(-time.Hour), Until: t0.Add(-50 * time.Minute), Offences: 3, Lifted: t0.Add(-50 * time.Minute)}
	for _, b := range []store.Ban{flood, net6, lifted} {
		ok(t, "PutBan("+b.Prefix+")", s.PutBan(ctx, b))
		got, err := s.GetBan(ctx, b.Prefix)
		ok(t, "GetBan("+b.Prefix+")", err)
		checkBan(t, "GetBan("+b.Prefix+")", got, b)
	}
	// By prefix as text: "192…" < "2001:…" < "203.…".
	checkBans(t, s, lifted, net6, flood)

	// Putting the same prefix replaces the record: a recidive.
	flood.Reason, flood.Trigger, flood.Offences = "rate: 100 requests in 1s", "rate:api", 2
	flood.Created, flood.Until = t0.Add(time.Hour), t0.Add(time.Hour+2*time.Minute)
	ok(t, "PutBan(203.0.113.7/32) again", s.PutBan(ctx, flood))
	// Lifting sets Lifted; an unlimited ban becomes limited.
	net6.Lifted, net6.Until = t0.Add(time.Minute), t0.Add(time.Minute)
	ok(t, "PutBan(2001:db8::/64) lifted", s.PutBan(ctx, net6))
	checkBans(t, s, lifted, net6, flood)

	ok(t, "DeleteBan(192.0.2.0/24)", s.DeleteBan(ctx, lifted.Prefix))
	checkBans(t, s, net6, flood)
	wantErr(t, "DeleteBan(192.0.2.0/24) again", s.DeleteBan(ctx, lifted.Prefix), errkind.NotFound, `ban of "192.0.2.0/24" not found`)
	_, err := s.GetBan(ctx, lifted.Prefix)
	wantErr(t, "GetBan(192.0.2.0/24) after DeleteBan", err, errkind.NotFound, `ban of "192.0.2.0/24" not found`)

	// A zero Created is now.
	lo := time.Now()
	ok(t, "PutBan(198.51.100.1/32) with a zero time", s.PutBan(ctx, store.Ban{Prefix: "198.51.100.1/32", Trigger: "login", By: "auto"}))
	hi := time.Now()
	got, err := s.GetBan(ctx, "198.51.100.1/32")
	ok(t, "GetBan(198.51.100.1/32)", err)
	between(t, "GetBan(198.51.100.1/32).Created", got.Created, lo, hi)
	checkBan(t, "GetBan(198.51.100.1/32)", got, store.Ban{Prefix: "198.51.100.1/32", Trigger: "login", By: "auto", Created: got.Created})
}

func testBanErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	good := store.Ban{Prefix: "203.0.113.7/32", Reason: "flood", Trigger: "flood", By: "auto", Created: t0, Offences: 1}
	ok(t, "PutBan(203.0.113.7/32)", s.PutBan(ctx, good))

	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		prefix string
		edit   func(b *store.Ban)
		msg    string
	}{
		{"no prefix", "", nil, "prefix"},
		{"an address", "203.0.113.8", nil, "does not parse"},
		{"garbage", "not-an-address/32", nil, "does not parse"},
		{"bits out of range", "203.0.113.0/33", nil, "does not parse"},
		{"host bits set", "203.0.113.7/24", nil, `write it "203.0.113.0/24"`},
		{"long IPv6 form", "2001:0db8:0000::/64", nil, `write it "2001:db8::/64"`},
		{"upper case IPv6", "2001:DB8::/64", nil, `write it "2001:db8::/64"`},
		{"negative offences", "198.51.100.0/24", func(b *store.Ban) { b.Offences = -1 }, "offences"},
		{"until out of range", "198.51.100.0/24", func(b *store.Ban) { b.Until = far }, "out of range"},
		{"lifted out of range", "198.51.100.0/24", func(b *store.Ban) { b.Lifted = far }, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			b.Prefix = tc.prefix
			if tc.edit != nil {
				tc.edit(&b)
			}
			wantErr(t, "PutBan("+tc.name+")", s.PutBan(ctx, b), errkind.Invalid, tc.msg)
			if tc.edit != nil {
				return // a valid prefix: Get and Delete find nothing
			}
			_, err := s.GetBan(ctx, tc.prefix)
			wantErr(t, "GetBan("+tc.name+")", err, errkind.Invalid, tc.msg)
			wantErr(t, "DeleteBan("+tc.name+")", s.DeleteBan(ctx, tc.prefix), errkind.Invalid, tc.msg)
		})
	}
	_, err := s.GetBan(ctx, "198.51.100.0/24")
	wantErr(t, "GetBan(198.51.100.0/24)", err, errkind.NotFound, `ban of "198.51.100.0/24" not found`)
	wantErr(t, "DeleteBan(198.51.100.0/24)", s.DeleteBan(ctx, "198.51.100.0/24"), errkind.NotFound, "not found")
	checkBans(t, s, good)
}
