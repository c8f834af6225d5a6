package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"noops/internal/errkind"
)

// ServerOptions are the flags of `noops server`.
type ServerOptions struct {
	Data          string
	Domain        string
	HTTPS         string
	HTTP          string
	Subnet        string
	BuildSubnet   string
	StackDebs     string // a .deb cache shared between data folders (tests, several servers on one machine)
	Internal      string // the gateway's internal mTLS listener for workloads ("off" disables)
	StopSandboxes bool   // stop every sandbox on shutdown instead of leaving them for the next server
	Logger        *slog.Logger
	Version       string
	Ready         func(https string) // called once the platform serves
}

// ServeFunc runs the platform until ctx ends.
type ServeFunc func(ctx context.Context, o ServerOptions) error

func newServer(e *env) *cobra.Command {
	var o ServerOptions
	var level string
	c := &cobra.Command{
		Use:   "server",
		Short: "Run the platform: admin API, builder, sandboxes and the HTTPS gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", level)}
			}
			o.Data, o.Version = e.data, Version
			o.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lv}))
			o.Ready = func(https string) {
				fmt.Fprintf(e.stdout, "noops %s serving https on %s for *.%s (data %s)\n", Version, https, o.Domain, o.Data)
			}
			if e.serve == nil {
				return errkind.Errorf(errkind.Internal, "this build of noops cannot run a server")
			}
			return e.serve(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Domain, "domain", envOr("NOOPS_DOMAIN", "localhost"), "apps are served at https://APP.DOMAIN")
	c.Flags().StringVar(&o.HTTPS, "https", ":443", "HTTPS listen address")
	c.Flags().StringVar(&o.HTTP, "http", ":80", "HTTP listen address, redirecting to HTTPS (\"off\" disables)")
	c.Flags().StringVar(&o.Subnet, "subnet", "10.88.0.0/16", "subnet of the sandbox network")
	c.Flags().StringVar(&o.BuildSubnet, "build-subnet", "10.89.0.0/16", "subnet of the build network (NAT'd, for package registries)")
	c.Flags().StringVar(&o.StackDebs, "stack-debs", envOr("NOOPS_STACK_DEBS", ""), "folder of downloaded Debian packages, shared between data folders (default DATA/stacks/debs; also NOOPS_STACK_DEBS)")
	c.Flags().StringVar(&o.Internal, "internal", ":15443", "listen address of the gateway's internal mTLS listener, where workloads call each other (\"off\" disables)")
	c.Flags().BoolVar(&o.StopSandboxes, "stop-sandboxes", false, "stop all sandboxes on shutdown (default: leave them running for the next server to adopt)")
	c.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	return c
}

func envOr(k, def string) string {
	if v := strings.TrimSpace(os.Getenv(k)); v != "" {
		return v
	}
	return def
}
