package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	log, err := s.ListAudit(ctx, 0, 0)
	ok(t, "ListAudit(0, 0) of an empty log", err)
	if log == nil || len(log) != 0 {
		t.Errorf("ListAudit(0, 0) of an empty log = %#v, want an empty, non-nil list", log)
	}

	in := []store.AuditEntry{
		{Time: t0, Actor: "uid:0 pid:1234", Action: "POST /v1/apps/{app}/deploy", Target: "app:web", Status: 201, Detail: "release 1"},
		{Time: t0.Add(-time.Hour), Actor: "user:ana", Action: "DELETE /v1/apps/{app}", Target: "app:old", Status: 404,
			Detail: `app "old" not found`},
		{Time: t0.Add(1), Actor: "", Action: "POST /v1/users", Status: 500},
	}
	var want []store.AuditEntry
	prev := ""
	for i, e := range in {
		e.Hash = "ignored"
		got, err := s.AppendAudit(ctx, e)
		ok(t, fmt.Sprintf("AppendAudit(%d)", i), err)
		if i > 0 && got.Seq <= want[i-1].Seq {
			t.Errorf("AppendAudit(%d).Seq = %d, want more than %d", i, got.Seq, want[i-1].Seq)
		}
		e.Seq = got.Seq
		e.Hash = store.AuditHash(prev, e)
		prev = e.Hash
		checkAudit(t, fmt.Sprintf("AppendAudit(%d)", i), got, e)
		want = append(want, e)
	}

	// Listing is by sequence, not time: entry 1 has the earliest time.
	tests := []struct {
		since int64
		limit int
		want  []store.AuditEntry
	}{
		{0, 10, want},
		{-5, 10, want},
		{want[0].Seq, 10, want[1:]},
		{want[1].Seq, 1, want[2:]},
		{want[2].Seq, 10, nil},
		{0, 2, want[:2]},
		{want[0].Seq - 1, 1, want[:1]},
	}
	for _, tc := range tests {
		call := fmt.Sprintf("ListAudit(%d, %d)", tc.since, tc.limit)
		got, err := s.ListAudit(ctx, tc.since, tc.limit)
		ok(t, call, err)
		if len(got) != len(tc.want) {
			t.Errorf("%s = %d entries, want %d", call, len(got), len(tc.want))
			continue
		}
		for i := range got {
			checkAudit(t, fmt.Sprintf("%s[%d]", call, i), got[i], tc.want[i])
		}
	}

	lo := time.Now()
	e, err := s.AppendAudit(ctx, store.AuditEntry{Actor: "uid:0", Action: "POST /v1/apps", Status: 201})
	hi := time.Now()
	ok(t, "AppendAudit with a zero time", err)
	between(t, "AppendAudit with a zero time .Time", e.Time, lo, hi)
	if h := store.AuditHash(prev, e); e.Hash != h {
		t.Errorf("AppendAudit with a zero time .Hash = %q, want %q (over the time it returned)", e.Hash, h)
	}
	log, err = s.ListAudit(ctx, want[2].Seq, 0)
	ok(t, "ListAudit", err)
	if len(log) != 1 {
		t.Fatalf("ListAudit after the zero-time entry = %d entries, want 1", len(log))
	}
	checkAudit(t, "ListAudit()[0]", log[0], e)
}

func testAuditLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = store.DefaultAuditLimit + 5
	var last store.AuditEntry
	for i := range n {
		var err error
		last, err = s.AppendAudit(ctx, store.AuditEntry{Time: t0, Actor: "uid:0", Action: "POST /v1/apps", Status: 200 + i})
		ok(t, fmt.Sprintf("AppendAudit(%d)", i), err)
	}
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"zero means the default", 0, store.DefaultAuditLimit},
		{"negative means the default", -1, store.DefaultAuditLimit},
		{"exact", 7, 7},
		{"more than there is", store.MaxAuditLimit * 2, n},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, 0, tc.limit)
			ok(t, "ListAudit", err)
			if len(got) != tc.want {
				t.Fatalf("ListAudit(0, %d) = %d entries, want %d", tc.limit, len(got), tc.want)
			}
			for i, e := range got {
				if e.Status != 200+i {
					t.Fatalf("ListAudit(0, %d)[%d].Status = %d, want %d (oldest first)", tc.limit, i, e.Status, 200+i)
				}
			}
		})
	}
	all, err := s.ListAudit(ctx, 0, n)
	ok(t, "ListAudit", err)
	since := all[n-4].Seq
	got, err := s.ListAudit(ctx, since, 0)
	ok(t, "ListAudit", err)
	if len(got) != 3 {
		t.Fatalf("ListAudit(%d, 0) = %d entries, want the last 3", since, len(got))
	}
	checkAudit(t, "ListAudit(last 3)[2]", got[2], last)
}

func testAuditErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.AppendAudit(ctx, store.AuditEntry{Actor: "uid:0", Target: "app:web", Status: 200})
	wantErr(t, "AppendAudit(no action)", err, errkind.Invalid, "action")
	log, err := s.ListAudit(ctx, 0, 0)
	ok(t, "ListAudit", err)
	if len(log) != 0 {
		t.Errorf("ListAudit after a refused AppendAudit = %+v, want nothing", log)
	}
}

// testAuditChain appends entries one by one and from many goroutines at
// once: the log read back must be one intact chain.
func testAuditChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	const (
		before  = 5
		workers = 8
		each    = 5
		total   = before + workers*each
	)
	var (
		mu       sync.Mutex
		appended = map[int64]store.AuditEntry{}
	)
	appendOne := func(e store.AuditEntry) error {
		got, err := s.AppendAudit(ctx, e)
		if err != nil {
			return err
		}
		mu.Lock()
		appended[got.Seq] = got
		mu.Unlock()
		return nil
	}
	for i := range before {
		ok(t, fmt.Sprintf("AppendAudit(%d)", i), appendOne(store.AuditEntry{Time: t0.Add(time.Duration(i)), Actor: "uid:0",
			Action: "POST /v1/apps", Target: "app:web", Status: 201, Detail: fmt.Sprintf("entry %d", i)}))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Zero times: the store picks them, and the hash must
				// cover the one it keeps.
				err := appendOne(store.AuditEntry{Actor: fmt.Sprintf("worker %d", w), Action: "POST /v1/apps/{app}/scale",
					Status: 200, Detail: fmt.Sprintf("call %d", i)})
				if err != nil {
					t.Errorf("worker %d: AppendAudit #%d: %v", w, i, err)
				}
			}
		})
	}
	wg.Wait()

	all, err := s.ListAudit(ctx, 0, store.MaxAuditLimit)
	ok(t, "ListAudit", err)
	if len(all) != total {
		t.Fatalf("ListAudit after %d appends = %d entries, want %d", total, len(all), total)
	}
	for i, e := range all {
		checkAudit(t, fmt.Sprintf("ListAudit()[%d]", i), e, appended[e.Seq])
	}
	if c := store.VerifyAudit(all); c.Entries != total || c.BrokenAt != 0 || c.Unhashed != 0 {
		t.Errorf("VerifyAudit(the log) = %+v, want %d entries, intact, none unhashed", c, total)
	}
}
