package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRegistry(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "registry",
		Short: "The registry endpoint: push and pull images with crane or skopeo, deploy them with `noops deploy --image`",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := e.client().Registry(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(r)
			}
			fmt.Fprintf(e.stdout, "registry: https://%s (user %s)\n", r.Host, r.User)
			fmt.Fprintf(e.stdout, "  trust:  noops ca root > ca.pem   (then SSL_CERT_FILE=ca.pem for crane, --dest-cert-dir for skopeo)\n")
			fmt.Fprintf(e.stdout, "  login:  crane auth login %s -u %s -p \"$(noops registry token)\"\n", r.Host, r.User)
			fmt.Fprintf(e.stdout, "  push:   crane push image.tar %s/myapp:v1\n", r.Host)
			fmt.Fprintf(e.stdout, "  deploy: noops deploy --image myapp:v1\n")
			return nil
		},
	}
	addJSON(c, e)
	c.AddCommand(&cobra.Command{
		Use:   "token",
		Short: "Print the registry password (user noops)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := e.client().Registry(cmd.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.stdout, r.Token)
			return err
		},
	})
	return c
}
