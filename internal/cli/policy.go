package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"noops/internal/errkind"
	"noops/internal/gateway/policy"
)

func newPolicy(e *env) *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Check and test Cedar access policies"}
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Parse a policy file and validate it against the noops schema",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := os.ReadFile(args[0])
			if err != nil {
				return errkind.E(errkind.Invalid, err)
			}
			if err := policy.Check(args[0], src); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: ok\n", args[0])
			return nil
		},
	}
	test := &cobra.Command{
		Use:   "test FILE",
		Short: "Run the allow/deny examples written in a policy file's comments",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := os.ReadFile(args[0])
			if err != nil {
				return errkind.E(errkind.Invalid, err)
			}
			res, err := policy.Test(args[0], src)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(res)
			}
			failed := 0
			for _, r := range res {
				mark := "ok  "
				if r.Want != r.Got {
					mark, failed = "FAIL", failed+1
				}
				fmt.Fprintf(e.stdout, "%s %s:%d %s\n", mark, args[0], r.Line, r.Example)
				if r.Want != r.Got {
					fmt.Fprintf(e.stdout, "     %s\n", r.Reason)
				}
			}
			fmt.Fprintf(e.stdout, "%d examples, %d failed\n", len(res), failed)
			if len(res) == 0 {
				return errkind.WithHint(errkind.Invalid, fmt.Errorf("%s has no examples", args[0]),
					"add comments like: // example: allow user=alice roles=admin method=GET path=/admin trust=30")
			}
			if failed > 0 {
				return errkind.Errorf(errkind.Invalid, "%d of %d examples failed", failed, len(res))
			}
			return nil
		},
	}
	addJSON(test, e)
	c.AddCommand(check, test)
	return c
}
