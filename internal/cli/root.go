// Package cli is the noops command line: one file per verb. It talks to the
// server only through apiclient, prints tables for people and JSON with
// --json, and maps error kinds to exit codes in one table.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"noops/internal/apiclient"
	"noops/internal/errkind"
)

// DefaultData is the data folder when neither --data nor NOOPS_DATA is set.
const DefaultData = "/var/lib/noops"

// env is what every command shares.
type env struct {
	data   string
	json   bool
	stdout io.Writer
	stderr io.Writer
	in     io.Reader // nil means os.Stdin
	serve  ServeFunc
	remote *apiclient.Client // set when NOOPS_URL names a remote server
}

// client is the remote API's client when NOOPS_URL is set, else the admin
// socket's of --data.
func (e *env) client() *apiclient.Client {
	if e.remote != nil {
		return e.remote
	}
	return apiclient.New(e.data)
}

// local are the commands that never talk to a remote server.
var local = map[string]bool{"server": true, "shim": true, "login": true, "demo": true, "check": true, "test": true, "version": true}

// connect sets up the remote client before a command runs.
func (e *env) connect(cmd *cobra.Command, _ []string) error {
	base := os.Getenv("NOOPS_URL")
	if base == "" || cmd.Flags().Changed("data") || local[cmd.Name()] {
		return nil
	}
	cl, err := e.remoteClient(cmd.Context(), base)
	if err != nil {
		return err
	}
	e.remote = cl
	return nil
}

// exitCode is the one table from error kinds to exit codes.
func exitCode(k errkind.Kind) int {
	switch k {
	case errkind.Invalid:
		return 2
	case errkind.NotFound:
		return 3
	case errkind.Conflict:
		return 4
	case errkind.Permission:
		return 5
	case errkind.Unavailable:
		return 6
	case errkind.Unauthenticated:
		return 7
	case errkind.TooMany:
		return 8
	}
	return 1
}

// usageError marks a command-line mistake.
type usageError struct{ error }

// Version is the platform's version, set at build time with
// -ldflags "-X noops/internal/cli.Version=…".
var Version = "dev"

// Main runs the command line and returns the exit code. serve runs the
// platform for `noops server`; cmd/noops passes the composition root's.
func Main(args []string, serve ServeFunc) int {
	return Run(context.Background(), args, os.Stdout, os.Stderr, serve)
}

// Run runs the command line with the given output streams.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, serve ServeFunc) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: stdout, stderr: stderr, serve: serve}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || (!classified(err) && isCobraUsage(err)) {
		help := "noops --help"
		if p := commandPath(root, args); p != "" {
			help = "noops " + p + " --help"
		}
		fmt.Fprintf(stderr, "noops: %v\nhint: see `%s`\n", err, help)
		return 2
	}
	fmt.Fprintf(stderr, "noops: %v\n", err)
	if h := apiclient.Hint(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	return exitCode(apiclient.Kind(err))
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:               "noops",
		Short:             "Turn a folder of source code into a hardened HTTPS service",
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: e.connect,
	}
	def := os.Getenv("NOOPS_DATA")
	if def == "" {
		def = DefaultData
	}
	root.PersistentFlags().StringVar(&e.data, "data", def, "data folder of the server (also NOOPS_DATA)")
	root.AddCommand(
		newServer(e), newDemo(e), newDeploy(e), newApps(e), newReleases(e), newRollback(e),
		newPs(e), newScale(e), newLogs(e), newEnv(e), newCA(e), newAudit(e), newShim(), newVersion(e), newMetrics(e), newEvents(e), newLoad(e),
		newStack(e), newRebase(e), newSBOM(e), newGC(e), newRegistry(e),
		newUsers(e), newLogin(e), newWhoAmI(e), newDevices(e), newPolicy(e), newBans(e), newFunctions(e),
		newMonitors(e), newAlerts(e), newTrace(e), newCapture(e),
		newPcap(e),
	)
	return root
}

// addJSON gives a read command its --json flag.
func addJSON(c *cobra.Command, e *env) {
	c.Flags().BoolVar(&e.json, "json", false, "print JSON for machines")
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) table(header string, rows [][]string) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// classified reports whether err came from the server or was classified
// by noops: such an error is never one of cobra's usage errors, whatever
// its message says.
func classified(err error) bool {
	var ae *apiclient.Error
	var ke *errkind.Error
	return errors.As(err, &ae) || errors.As(err, &ke)
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires ", "invalid argument", "flag needs"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func commandPath(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == root {
		return ""
	}
	return strings.TrimPrefix(c.CommandPath(), "noops ")
}
