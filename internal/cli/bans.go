package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
)

func newBans(e *env) *cobra.Command {
	c := &cobra.Command{Use: "bans", Short: "List, add and remove the clients the gateway refuses at its door"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List active bans",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, err := e.client().Bans(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(bs)
			}
			rows := make([][]string, len(bs))
			for i, b := range bs {
				until := "removed"
				if !b.Until.IsZero() {
					until = b.Until.Local().Format(time.DateTime) + " (" + time.Until(b.Until).Round(time.Second).String() + ")"
				}
				rows[i] = []string{b.Prefix, b.Trigger, fmt.Sprint(b.Offences), b.Created.Local().Format(time.DateTime), until, b.By, b.Reason}
			}
			e.table("CLIENT\tTRIGGER\tOFFENCES\tSINCE\tUNTIL\tBY\tREASON", rows)
			return nil
		},
	}
	addJSON(list, e)
	var dur, reason string
	add := &cobra.Command{
		Use:   "add IP|CIDR",
		Short: "Ban a client: its connections are closed and new ones refused before TLS",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := e.client().Ban(cmd.Context(), apitype.BanRequest{Prefix: args[0], Duration: dur, Reason: reason})
			if err != nil {
				return err
			}
			until := "until removed"
			if !b.Until.IsZero() {
				until = "until " + b.Until.Local().Format(time.DateTime)
			}
			fmt.Fprintf(e.stdout, "banned %s %s\n", b.Prefix, until)
			return nil
		},
	}
	add.Flags().StringVar(&dur, "for", "", "how long (10m, 24h); default until removed")
	add.Flags().StringVar(&reason, "reason", "", "why (kept in the ban and the audit log)")
	remove := &cobra.Command{
		Use:   "remove IP|CIDR",
		Short: "Lift a ban",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := e.client().Unban(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "lifted the ban of %s\n", b.Prefix)
			return nil
		},
	}
	c.AddCommand(list, add, remove)
	return c
}
