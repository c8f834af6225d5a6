package cli

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"noops/internal/apiclient"
	"noops/internal/apitype"
	"noops/internal/errkind"
)

func newLogin(e *env) *cobra.Command {
	var user, caFile, name, code string
	c := &cobra.Command{
		Use:   "login [URL]",
		Short: "Sign this device in to a server (URL or NOOPS_URL) and get its client certificate",
		Long: `login creates an ECDSA P-256 key on this device (it never leaves it), proves the
user's password and one-time code, registers the device and stores a
short-lived client certificate under $NOOPS_CONFIG/devices. Later commands
with NOOPS_URL set present it, and renew it at half its life.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			base := os.Getenv("NOOPS_URL")
			if len(args) == 1 {
				base = args[0]
			}
			if base == "" {
				return usageError{fmt.Errorf("give the server's URL (https://api.DOMAIN[:PORT]) or set NOOPS_URL")}
			}
			if user == "" {
				return usageError{fmt.Errorf("give --user")}
			}
			var roots *x509.CertPool
			if caFile != "" {
				pemData, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("reading --ca: %w", err)
				}
				roots = x509.NewCertPool()
				if !roots.AppendCertsFromPEM(pemData) {
					return errkind.Errorf(errkind.Invalid, "--ca %s holds no PEM certificate", caFile)
				}
			}
			if name == "" {
				name, _ = os.Hostname()
			}
			pw, err := e.secret("Password for " + user + ": ")
			if err != nil {
				return err
			}
			cr, err := loadCreds(base)
			if err != nil {
				return err
			}
			if err := cr.newKey(); err != nil {
				return err
			}
			csr, err := cr.csr(name)
			if err != nil {
				return err
			}
			cl, err := apiclient.NewRemote(base, apiclient.Remote{Roots: roots, Connect: os.Getenv("NOOPS_CONNECT")})
			if err != nil {
				return err
			}
			dc, err := cl.Login(cmd.Context(), apitype.LoginRequest{User: user, Password: pw, Code: code, Device: name, CSR: csr})
			if err != nil {
				if apiclient.Kind(err) == errkind.Unauthenticated && code == "" {
					return errkind.WithHint(errkind.Unauthenticated, err, "if the user has TOTP, add --code with the 6 digits the authenticator app shows")
				}
				return err
			}
			if dc.RootPEM == "" && roots == nil {
				return errkind.Errorf(errkind.Internal, "the server sent no CA root")
			}
			if err := cr.save(dc, base); err != nil {
				return err
			}
			if e.json {
				return e.printJSON(dc)
			}
			fmt.Fprintf(e.stdout, "signed in as %s on device %s (%s)\ncertificate %s valid until %s; renewed at half-life while the device is trusted\nnext: export NOOPS_URL=%s\n",
				dc.Device.User, dc.Device.ID, name, dc.SPIFFEID, dc.Expires.Local().Format(time.DateTime), base)
			return nil
		},
	}
	c.Flags().StringVar(&user, "user", os.Getenv("USER"), "user name")
	c.Flags().StringVar(&caFile, "ca", "", "the server's CA root (PEM, from `noops ca root`); default: the system's roots")
	c.Flags().StringVar(&name, "name", "", "a name for this device (default: host name)")
	c.Flags().StringVar(&code, "code", "", "the one-time code of the user's authenticator app")
	addJSON(c, e)
	return c
}

func newWhoAmI(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the server takes you for, and your trust score",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := e.client().WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(w)
			}
			fmt.Fprintf(e.stdout, "user:   %s (roles: %s)\nvia:    %s\n", w.User, rolesText(w.Roles), w.Via)
			if w.Device != "" {
				fmt.Fprintf(e.stdout, "device: %s\nid:     %s\ncert:   valid until %s\ntrust:  %d\n", w.Device, w.SPIFFEID, w.Expires.Local().Format(time.DateTime), w.Trust)
			}
			return nil
		},
	}
	addJSON(c, e)
	return c
}
