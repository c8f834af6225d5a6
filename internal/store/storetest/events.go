package storetest

import (
	"testing"

	"noops/internal/errkind"
	"noops/internal/store"
)

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.ListEvents(ctx, store.EventQuery{})
	ok(t, "ListEvents of none", err)
	if got == nil || len(got) != 0 {
		t.Errorf("ListEvents of none = %#v, want an empty, non-nil list", got)
	}
	in := []store.Event{
		{Time: t0, App: "web", Kind: "crashloop", Message: "release 2 crashed 3 times in a row (exit 1)"},
		{Time: t0.Add(1), App: "api", Kind: "oom", Message: "killed: out of memory (limit 64Mi)"},
		{Time: t0.Add(2), App: "web", Kind: "scaled", Message: "1 -> 0 replicas: idle for 60s"},
		{Time: t0.Add(3), Kind: "platform", Message: "no app"},
	}
	var want []store.Event
	for i, e := range in {
		got, err := s.AppendEvent(ctx, e)
		ok(t, "AppendEvent", err)
		if i > 0 && got.Seq <= want[i-1].Seq {
			t.Errorf("AppendEvent(%d).Seq = %d, want more than %d", i, got.Seq, want[i-1].Seq)
		}
		e.Seq, e.Time = got.Seq, e.Time.UTC() // times come back in UTC
		if got != e {
			t.Errorf("AppendEvent(%d) = %+v, want %+v", i, got, e)
		}
		want = append(want, e)
	}
	check := func(name string, got []store.Event, err error, want ...store.Event) {
		t.Helper()
		ok(t, name, err)
		if len(got) != len(want) {
			t.Fatalf("%s = %d events %+v, want %d", name, len(got), got, len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s[%d] = %+v, want %+v", name, i, got[i], want[i])
			}
		}
	}
	all, err := s.ListEvents(ctx, store.EventQuery{Limit: 10})
	check("ListEvents all", all, err, want...)
	web, err := s.ListEvents(ctx, store.EventQuery{App: "web", Limit: 10})
	check("ListEvents web", web, err, want[0], want[2])
	after, err := s.ListEvents(ctx, store.EventQuery{App: "web", Since: want[0].Seq, Limit: 10})
	check("ListEvents web after the first", after, err, want[2])
	one, err := s.ListEvents(ctx, store.EventQuery{Limit: 1})
	check("ListEvents limit 1", one, err, want[0])
	none, err := s.ListEvents(ctx, store.EventQuery{App: "nosuchapp", Limit: 10})
	check("ListEvents of an app without events", none, err)
	kinds, err := s.ListEvents(ctx, store.EventQuery{Kinds: []string{"oom", "scaled"}})
	check("ListEvents of two kinds", kinds, err, want[1], want[2])
	between, err := s.ListEvents(ctx, store.EventQuery{From: t0.Add(1), To: t0.Add(3)})
	check("ListEvents in a time range", between, err, want[1], want[2])
	from, err := s.ListEvents(ctx, store.EventQuery{App: "web", From: t0.Add(1)})
	check("ListEvents from a time", from, err, want[2])

	if _, err := s.AppendEvent(ctx, store.Event{App: "web"}); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("AppendEvent without a kind = %v, want invalid", err)
	}
	e, err := s.AppendEvent(ctx, store.Event{Kind: "now"})
	ok(t, "AppendEvent with a zero time", err)
	if e.Time.IsZero() {
		t.Errorf("AppendEvent with a zero time kept it zero")
	}
}
