package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newDevices(e *env) *cobra.Command {
	c := &cobra.Command{Use: "devices", Short: "List and revoke the devices users signed in from"}
	var user string
	list := &cobra.Command{
		Use:   "list",
		Short: "List devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ds, err := e.client().Devices(cmd.Context(), user)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(ds)
			}
			rows := make([][]string, len(ds))
			for i, d := range ds {
				state := "trusted"
				if !d.Revoked.IsZero() {
					state = "revoked " + d.Revoked.Local().Format(time.DateTime) + ": " + d.RevokeReason
				}
				cert := "-"
				if !d.CertExpires.IsZero() {
					cert = d.CertExpires.Local().Format(time.DateTime)
				}
				rows[i] = []string{d.ID, d.User, d.Name, d.Created.Local().Format(time.DateOnly), cert, state}
			}
			e.table("ID\tUSER\tNAME\tSINCE\tCERT UNTIL\tSTATE", rows)
			return nil
		},
	}
	list.Flags().StringVar(&user, "user", "", "only this user's devices")
	addJSON(list, e)
	var reason string
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Stop trusting a device: its next request is refused and it gets no new certificate",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := e.client().Revoke(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked device %s of %s (%s)\n", d.ID, d.User, d.Name)
			return nil
		},
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why (kept in the device record and the audit log)")
	c.AddCommand(list, revoke)
	return c
}
