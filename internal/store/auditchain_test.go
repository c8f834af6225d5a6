package store

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// legacy returns n entries from before the chain, Seq 1 to n.
func legacy(n int) []AuditEntry {
	var out []AuditEntry
	for i := range n {
		out = append(out, AuditEntry{Seq: int64(i + 1), Time: t0.Add(time.Duration(i)), Actor: "uid:0",
			Action: "POST /v1/apps", Target: "app:old", Status: 201})
	}
	return out
}

// chain appends n hashed entries to before, as AppendAudit would.
func chain(before []AuditEntry, n int) []AuditEntry {
	out := slices.Clone(before)
	prev, seq := "", int64(0)
	if len(out) > 0 {
		prev, seq = out[len(out)-1].Hash, out[len(out)-1].Seq
	}
	for i := range n {
		seq++
		e := AuditEntry{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Actor: "user:ana",
			Action: "POST /v1/apps/{app}/deploy", Target: "app:web", Status: 200 + i, Detail: fmt.Sprintf("release %d", i)}
		e.Hash = AuditHash(prev, e)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

// edited returns a copy of entries with f applied to the entry at index i.
func edited(entries []AuditEntry, i int, f func(e *AuditEntry)) []AuditEntry {
	out := slices.Clone(entries)
	f(&out[i])
	return out
}

func TestVerifyAudit(t *testing.T) {
	five := chain(nil, 5) // Seq 1 to 5
	tests := []struct {
		name     string
		entries  []AuditEntry
		unhashed int
		brokenAt int64
	}{
		{"empty log", nil, 0, 0},
		{"intact chain", five, 0, 0},
		{"changed detail", edited(five, 2, func(e *AuditEntry) { e.Detail = "nothing happened" }), 0, 3},
		{"changed time", edited(five, 2, func(e *AuditEntry) { e.Time = e.Time.Add(1) }), 0, 3},
		{"changed status", edited(five, 0, func(e *AuditEntry) { e.Status = 403 }), 0, 1},
		{"changed seq", edited(five, 4, func(e *AuditEntry) { e.Seq = 9 }), 0, 9},
		{"changed last hash", edited(five, 4, func(e *AuditEntry) { e.Hash = AuditHash("", *e) }), 0, 5},
		{"changed and rehashed", edited(five, 2, func(e *AuditEntry) {
			e.Detail = "nothing happened"
			e.Hash = AuditHash(five[1].Hash, *e)
		}), 0, 4},
		{"middle entry removed", slices.Delete(slices.Clone(five), 2, 3), 0, 4},
		{"first entry removed", five[1:], 0, 2},
		{"entries swapped", []AuditEntry{five[0], five[2], five[1], five[3], five[4]}, 0, 3},
		{"contents swapped, seqs kept", edited(edited(five, 1, func(e *AuditEntry) { *e = five[2]; e.Seq = 2 }),
			2, func(e *AuditEntry) { *e = five[1]; e.Seq = 3 }), 0, 2},
		{"entry repeated", []AuditEntry{five[0], five[1], five[1], five[2]}, 0, 2},
		{"legacy entries before the chain", chain(legacy(3), 4), 3, 0},
		{"legacy entries only", legacy(3), 3, 0},
		{"unhashed entry after hashed ones", append(chain(legacy(2), 2), AuditEntry{Seq: 5, Time: t0, Action: "x"}), 2, 5},
		{"hash removed inside the chain", edited(chain(legacy(2), 3), 3, func(e *AuditEntry) { e.Hash = "" }), 2, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := VerifyAudit(tc.entries)
			if c.Unhashed != tc.unhashed || c.BrokenAt != tc.brokenAt {
				t.Errorf("VerifyAudit() = %+v, want Unhashed %d, BrokenAt %d", c, tc.unhashed, tc.brokenAt)
			}
			if (c.Reason != "") != (tc.brokenAt != 0) {
				t.Errorf("VerifyAudit().Reason = %q with BrokenAt %d, want a reason exactly when broken", c.Reason, c.BrokenAt)
			}
			if tc.brokenAt == 0 && c.Entries != len(tc.entries) {
				t.Errorf("VerifyAudit().Entries = %d, want %d", c.Entries, len(tc.entries))
			}
		})
	}
}

// TestAuditHash checks that every field, the previous hash included, is
// in the hash, that fields cannot run into each other, and that the time
// counts as an instant, whatever its zone.
func TestAuditHash(t *testing.T) {
	base := AuditEntry{Seq: 7, Time: t0, Actor: "ab", Action: "c", Target: "app:web", Status: 200, Detail: "d"}
	h := AuditHash("prev", base)
	if len(h) != 64 {
		t.Errorf("AuditHash() = %q, want 64 hex digits", h)
	}
	changed := []struct {
		name string
		prev string
		edit func(e *AuditEntry)
	}{
		{"prev", "other", func(*AuditEntry) {}},
		{"seq", "prev", func(e *AuditEntry) { e.Seq = 8 }},
		{"time", "prev", func(e *AuditEntry) { e.Time = e.Time.Add(1) }},
		{"actor", "prev", func(e *AuditEntry) { e.Actor = "ab " }},
		{"action", "prev", func(e *AuditEntry) { e.Action = "C" }},
		{"target", "prev", func(e *AuditEntry) { e.Target = "app:api" }},
		{"status", "prev", func(e *AuditEntry) { e.Status = 201 }},
		{"detail", "prev", func(e *AuditEntry) { e.Detail = "" }},
		{"actor and action run together", "prev", func(e *AuditEntry) { e.Actor, e.Action = "a", "bc" }},
	}
	for _, tc := range changed {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			tc.edit(&e)
			if got := AuditHash(tc.prev, e); got == h {
				t.Errorf("AuditHash(%q, %+v) = %q, the same as before the change", tc.prev, e, got)
			}
		})
	}
	same := base
	same.Time = t0.In(time.FixedZone("UTC+5", 5*3600))
	same.Hash = "ignored"
	if got := AuditHash("prev", same); got != h {
		t.Errorf("AuditHash() of the same instant in another zone, with a Hash set = %q, want %q", got, h)
	}
}
