package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"noops/internal/runtime/runc"
)

func newCA(e *env) *cobra.Command {
	c := &cobra.Command{Use: "ca", Short: "The platform's internal certificate authority"}
	c.AddCommand(&cobra.Command{
		Use:   "root",
		Short: "Print the internal CA's root certificate (PEM)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pem, err := e.client().CARoot(cmd.Context())
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(pem)
			return err
		},
	})
	return c
}

// newShim is the sandbox shim that the runc driver starts; not for people.
func newShim() *cobra.Command {
	return &cobra.Command{
		Use:                "shim",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return runc.RunShim(args)
		},
	}
}

func newVersion(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(e.stdout, "noops", Version)
		},
	}
}
