package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"noops/internal/apitype"
	"noops/internal/errkind"
)

func newUsers(e *env) *cobra.Command {
	c := &cobra.Command{Use: "users", Short: "Manage the users of the built-in identity store"}
	c.AddCommand(newUsersAdd(e), newUsersList(e), newUsersSet(e, "disable", true), newUsersSet(e, "enable", false),
		newUsersRoles(e), newUsersPasswd(e), newUsersTOTP(e), newUsersResetPasskeys(e))
	return c
}

// secret reads a password: from the terminal without echo, or one line
// of stdin when stdin is not a terminal.
func (e *env) secret(prompt string) (string, error) {
	if f, ok := e.stdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin(), 4096)).ReadString('\n')
	if err != nil && line == "" {
		return "", errkind.WithHint(errkind.Invalid, fmt.Errorf("reading the password from stdin: %w", err), "pipe it in: echo \"$PASSWORD\" | noops ...")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (e *env) stdin() io.Reader {
	if e.in != nil {
		return e.in
	}
	return os.Stdin
}

func newUsersAdd(e *env) *cobra.Command {
	var roles []string
	c := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user (the password is read from the terminal or stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := e.secret("Password for " + args[0] + ": ")
			if err != nil {
				return err
			}
			u, err := e.client().AddUser(cmd.Context(), apitype.UserRequest{Name: args[0], Password: pw, Roles: roles})
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(u)
			}
			fmt.Fprintf(e.stdout, "added %s (roles: %s)\nnext: noops users totp %s   (a second factor: +10 trust)\n", u.Name, rolesText(u.Roles), u.Name)
			return nil
		},
	}
	c.Flags().StringSliceVar(&roles, "role", nil, "a role or group (admin, viewer, or any name policies use); repeatable")
	addJSON(c, e)
	return c
}

func rolesText(r []string) string {
	if len(r) == 0 {
		return "none"
	}
	return strings.Join(r, ", ")
}

func newUsersList(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List the users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			us, err := e.client().Users(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(us)
			}
			rows := make([][]string, len(us))
			for i, u := range us {
				state := "active"
				switch {
				case u.Disabled:
					state = "disabled"
				case time.Now().Before(u.LockedUntil):
					state = "locked until " + u.LockedUntil.Local().Format(time.TimeOnly)
				}
				last := "never"
				if !u.LastLogin.IsZero() {
					last = u.LastLogin.Local().Format(time.DateTime)
				}
				rows[i] = []string{u.Name, rolesText(u.Roles), u.TOTP, strconv.Itoa(u.Passkeys), state, last}
			}
			e.table("NAME\tROLES\tTOTP\tPASSKEYS\tSTATE\tLAST SIGN-IN", rows)
			return nil
		},
	}
	addJSON(c, e)
	return c
}

func newUsersSet(e *env, verb string, disabled bool) *cobra.Command {
	short := "Disable a user: their sessions end and their devices are refused"
	if !disabled {
		short = "Enable a disabled user again"
	}
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := e.client().ChangeUser(cmd.Context(), args[0], apitype.UserChange{Disabled: &disabled}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%sd %s\n", verb, args[0])
			return nil
		},
	}
}

func newUsersRoles(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "roles NAME [ROLE...]",
		Short: "Set a user's roles (none removes them all)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			roles := args[1:]
			u, err := e.client().ChangeUser(cmd.Context(), args[0], apitype.UserChange{Roles: &roles})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: roles %s\n", u.Name, rolesText(u.Roles))
			return nil
		},
	}
}

func newUsersPasswd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password (and lift a lockout)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := e.secret("New password for " + args[0] + ": ")
			if err != nil {
				return err
			}
			if _, err := e.client().ChangeUser(cmd.Context(), args[0], apitype.UserChange{Password: &pw}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "password of %s set\n", args[0])
			return nil
		},
	}
}

func newUsersTOTP(e *env) *cobra.Command {
	var qr, code string
	var reset bool
	c := &cobra.Command{
		Use:   "totp NAME",
		Short: "Enrol a TOTP authenticator app for a user (then confirm with --code)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl := e.client()
			if reset {
				if _, err := cl.ChangeUser(cmd.Context(), args[0], apitype.UserChange{ResetTOTP: true}); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "TOTP of %s removed: sign-ins ask for a password only until a new enrolment is confirmed\n", args[0])
				return nil
			}
			if code != "" {
				if err := cl.ConfirmTOTP(cmd.Context(), args[0], code); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "TOTP is on for %s: sign-ins now ask for a code\n", args[0])
				return nil
			}
			en, err := cl.EnrollTOTP(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(en)
			}
			if qr != "" {
				if err := os.WriteFile(qr, en.QRPNG, 0o600); err != nil {
					return fmt.Errorf("writing the QR code: %w", err)
				}
			}
			fmt.Fprintf(e.stdout, "scan into an authenticator app:\n  %s\nor type the secret: %s\n", en.URI, en.Secret)
			if qr != "" {
				fmt.Fprintf(e.stdout, "QR code written to %s\n", qr)
			}
			fmt.Fprintf(e.stdout, "then confirm: noops users totp %s --code 123456\n", args[0])
			return nil
		},
	}
	c.Flags().StringVar(&qr, "qr", "", "write the QR code as a PNG to this file")
	c.Flags().StringVar(&code, "code", "", "confirm the enrolment with the code the app shows")
	c.Flags().BoolVar(&reset, "reset", false, "remove the user's TOTP (a lost authenticator) so that a new one can be enrolled")
	addJSON(c, e)
	return c
}

func newUsersResetPasskeys(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "reset-passkeys NAME",
		Short: "Remove all of a user's passkeys (a lost or cloned authenticator)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := e.client().ChangeUser(cmd.Context(), args[0], apitype.UserChange{ResetPasskeys: true}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "passkeys of %s removed\n", args[0])
			return nil
		},
	}
}
