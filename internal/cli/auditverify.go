package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"noops/internal/errkind"
	"noops/internal/store"
)

// verifyAudit reads the whole audit log and checks its hash chain here, on
// the client: a server (or a database) that changed a record cannot also
// fix the check.
func (e *env) verifyAudit(cmd *cobra.Command) error {
	var all []store.AuditEntry
	var since int64
	for {
		page, err := e.client().Audit(cmd.Context(), since, store.MaxAuditLimit)
		if err != nil {
			return err
		}
		for _, r := range page {
			all = append(all, store.AuditEntry{Seq: r.Seq, Time: r.Time, Actor: r.Actor, Action: r.Action, Target: r.Target,
				Status: r.Status, Detail: r.Detail, Hash: r.Hash})
			since = r.Seq
		}
		if len(page) < store.MaxAuditLimit {
			break
		}
	}
	c := store.VerifyAudit(all)
	if e.json {
		if err := e.printJSON(c); err != nil {
			return err
		}
	}
	if c.BrokenAt != 0 {
		return errkind.WithHint(errkind.Conflict, fmt.Errorf("the audit log was tampered with: %s", c.Reason),
			"records from that one on cannot be trusted; compare with a copy kept elsewhere")
	}
	if !e.json {
		fmt.Fprintf(e.stdout, "audit log intact: %d records, %d hash-chained", c.Entries, c.Entries-c.Unhashed)
		if c.Unhashed > 0 {
			fmt.Fprintf(e.stdout, " (%d older ones predate the chain)", c.Unhashed)
		}
		fmt.Fprintln(e.stdout)
	}
	return nil
}
