package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// AuditHash is the hash that chains the audit log: the hex SHA-256 of the
// previous entry's hash followed by every field of e (Seq, Time in Unix
// nanoseconds, Actor, Action, Target, Status, Detail), each length-prefixed
// so that no two entries encode alike. The store sets AuditEntry.Hash with
// it on append; changing, removing or reordering an entry breaks every
// hash after it.
func AuditHash(prev string, e AuditEntry) string {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(prev)
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.Time.UnixNano()))
	h.Write(n[:])
	field(e.Actor)
	field(e.Action)
	field(e.Target)
	binary.BigEndian.PutUint64(n[:], uint64(int64(e.Status)))
	h.Write(n[:])
	field(e.Detail)
	return hex.EncodeToString(h.Sum(nil))
}

// AuditCheck is the outcome of VerifyAudit.
type AuditCheck struct {
	Entries  int   // entries read
	Unhashed int   // entries older than the chain (recorded before it existed)
	BrokenAt int64 // Seq of the first entry whose hash does not match; 0 when intact
	Reason   string
}

// VerifyAudit walks the whole log from its first entry, oldest first, and
// checks the chain. Entries recorded before the chain existed (no hash)
// may only come before the first hashed one.
func VerifyAudit(entries []AuditEntry) AuditCheck {
	var c AuditCheck
	prev, chained := "", false
	var last int64
	for _, e := range entries {
		c.Entries++
		switch {
		case e.Seq <= last:
			c.BrokenAt, c.Reason = e.Seq, fmt.Sprintf("entry %d comes after entry %d", e.Seq, last)
			return c
		case e.Hash == "" && !chained:
			c.Unhashed++
		case e.Hash == "":
			c.BrokenAt, c.Reason = e.Seq, fmt.Sprintf("entry %d has no hash but follows hashed entries", e.Seq)
			return c
		case e.Hash != AuditHash(prev, e):
			c.BrokenAt, c.Reason = e.Seq, fmt.Sprintf("entry %d does not match its hash: it, or an entry before it, was changed or removed", e.Seq)
			return c
		default:
			chained = true
		}
		prev, last = e.Hash, e.Seq
	}
	return c
}
