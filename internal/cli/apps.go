package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
	"noops/internal/errkind"
)

func newApps(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "apps",
		Short: "List apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			apps, err := e.client().Apps(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(apps)
			}
			rows := make([][]string, len(apps))
			for i, a := range apps {
				rel := "-"
				if a.Release > 0 {
					rel = "v" + strconv.Itoa(a.Release)
				}
				rows[i] = []string{a.Name, rel, fmt.Sprintf("%d/%d", a.Healthy, a.Replicas), a.URL}
			}
			e.table("NAME\tRELEASE\tHEALTHY\tURL", rows)
			return nil
		},
	}
	addJSON(c, e)
	del := &cobra.Command{
		Use:   "delete APP",
		Short: "Stop an app's sandboxes and delete it with its releases (the audit log keeps its history)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().DeleteApp(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted %s\n", args[0])
			return nil
		},
	}
	c.AddCommand(del)
	return c
}

func newReleases(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "releases APP",
		Short: "List an app's releases, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rels, err := e.client().Releases(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(rels)
			}
			rows := make([][]string, len(rels))
			for i, r := range rels {
				rows[i] = []string{"v" + strconv.Itoa(r.Number), r.Status, r.Created.Local().Format(time.DateTime), short(r.Image), r.Reason}
			}
			e.table("RELEASE\tSTATUS\tCREATED\tIMAGE\tWHAT", rows)
			return nil
		},
	}
	addJSON(c, e)
	return c
}

func short(digest string) string {
	if i := strings.IndexByte(digest, ':'); i >= 0 && len(digest) > i+13 {
		return digest[:i+13]
	}
	return digest
}

func newRollback(e *env) *cobra.Command {
	var to int
	c := &cobra.Command{
		Use:   "rollback APP [--to N]",
		Short: "Make an earlier release live again, without a rebuild",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rel, err := e.client().Rollback(cmd.Context(), args[0], to)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(rel)
			}
			fmt.Fprintf(e.stdout, "%s: release v%d is live (%s)\n", args[0], rel.Number, rel.Reason)
			return nil
		},
	}
	c.Flags().IntVar(&to, "to", 0, "release number to return to (default: the previous live one)")
	addJSON(c, e)
	return c
}

func newPs(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "ps APP",
		Short: "List an app's sandboxes and their state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sbs, err := e.client().Ps(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(sbs)
			}
			rows := make([][]string, len(sbs))
			for i, s := range sbs {
				pid := "-"
				if s.Pid > 0 {
					pid = strconv.Itoa(s.Pid)
				}
				rows[i] = []string{s.ID, orDash(s.Process), "v" + strconv.Itoa(s.Release), s.State, orDash(s.Addr), pid, strconv.Itoa(s.Restarts), orDash(s.LastExit),
					time.Since(s.Updated).Round(time.Second).String()}
			}
			e.table("SANDBOX\tTYPE\tRELEASE\tSTATE\tADDRESS\tPID\tRESTARTS\tLAST EXIT\tSINCE", rows)
			sc, err := e.client().Scaling(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout)
			printScaling(e.stdout, sc)
			return nil
		},
	}
	addJSON(c, e)
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newScale(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "scale APP [N]",
		Short: "Run N replicas of the live release, or show the app's replicas, autoscaling and cold starts",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				sc, err := e.client().Scaling(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(sc)
				}
				printScaling(e.stdout, sc)
				return nil
			}
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return errkind.Errorf(errkind.Invalid, "replicas %q is not a number", args[1])
			}
			a, err := e.client().Scale(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(a)
			}
			fmt.Fprintf(e.stdout, "%s: %d/%d replicas healthy\n", a.Name, a.Healthy, a.Replicas)
			return nil
		},
	}
	addJSON(c, e)
	return c
}

func newEnv(e *env) *cobra.Command {
	c := &cobra.Command{Use: "env", Short: "Show or change an app's config vars (each change is a new release)"}
	list := &cobra.Command{
		Use:   "list APP",
		Short: "Show the app's config vars",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := e.client().Env(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(env)
			}
			for _, k := range sortedKeys(env.Env) {
				fmt.Fprintf(e.stdout, "%s=%s\n", k, env.Env[k])
			}
			return nil
		},
	}
	addJSON(list, e)
	set := &cobra.Command{
		Use:   "set APP KEY=VALUE...",
		Short: "Set config vars and roll out a new release",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.EnvRequest{Set: map[string]string{}}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("%q is not KEY=VALUE", kv)}
				}
				req.Set[k] = v
			}
			return e.changeEnv(cmd, args[0], req)
		},
	}
	unset := &cobra.Command{
		Use:   "unset APP KEY...",
		Short: "Remove config vars and roll out a new release",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.changeEnv(cmd, args[0], apitype.EnvRequest{Unset: args[1:]})
		},
	}
	c.AddCommand(list, set, unset)
	return c
}

func (e *env) changeEnv(cmd *cobra.Command, app string, req apitype.EnvRequest) error {
	rel, err := e.client().SetEnv(cmd.Context(), app, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: release v%d is live (%s)\n", app, rel.Number, rel.Reason)
	return nil
}

func newAudit(e *env) *cobra.Command {
	var since int64
	var limit int
	var verify bool
	c := &cobra.Command{
		Use:   "audit-log",
		Short: "Show the append-only record of every change made through the API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if verify {
				return e.verifyAudit(cmd)
			}
			rows, err := e.client().Audit(cmd.Context(), since, limit)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(rows)
			}
			out := make([][]string, len(rows))
			for i, r := range rows {
				out[i] = []string{strconv.FormatInt(r.Seq, 10), r.Time.Local().Format(time.DateTime), r.Actor, r.Action, r.Target, strconv.Itoa(r.Status), r.Detail}
			}
			e.table("SEQ\tTIME\tACTOR\tACTION\tTARGET\tSTATUS\tDETAIL", out)
			return nil
		},
	}
	c.Flags().Int64Var(&since, "since", 0, "show records after this sequence number")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many records")
	c.Flags().BoolVar(&verify, "verify", false, "read the whole log and check its hash chain: a changed, removed or reordered record shows")
	addJSON(c, e)
	return c
}
