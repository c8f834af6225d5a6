package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
)

func newStack(e *env) *cobra.Command {
	c := &cobra.Command{Use: "stack", Short: "The stacks apps run on: images assembled from Debian packages, versions pinned"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the stacks and their images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stacks, err := e.client().Stacks(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(stacks)
			}
			rows := make([][]string, 0, len(stacks))
			for _, s := range stacks {
				rows = append(rows, []string{s.Name, imageCell(s.Run), imageCell(s.Build)})
			}
			e.table("STACK\tRUN IMAGE\tBUILD IMAGE", rows)
			return nil
		},
	}
	addJSON(list, e)
	build := &cobra.Command{
		Use:   "build NAME",
		Short: "Build a stack's images from its pinned packages (resolving them the first time)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := newProgress(e.stderr, e.json)
			ev, err := e.client().BuildStack(cmd.Context(), args[0], p.event)
			p.done()
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(ev.Stack)
			}
			fmt.Fprintf(e.stdout, "%s: run image %s\n", ev.Stack.Name, imageCell(ev.Stack.Run))
			return nil
		},
	}
	addJSON(build, e)
	update := &cobra.Command{
		Use:   "update NAME",
		Short: "Update a stack to the archive's newest packages and say which apps to rebase",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := newProgress(e.stderr, e.json)
			ev, err := e.client().UpdateStack(cmd.Context(), args[0], p.event)
			p.done()
			if err != nil {
				return err
			}
			u := ev.StackUpdate
			if e.json {
				return e.printJSON(u)
			}
			if len(u.Run) == 0 && len(u.Build) == 0 {
				fmt.Fprintf(e.stdout, "%s: already up to date\n", u.Stack.Name)
			}
			printChanges(e, "run image", u.Run)
			printChanges(e, "build image", u.Build)
			if len(u.Affected) > 0 {
				fmt.Fprintf(e.stdout, "apps on an older %s run image: %s\n  rebase them: noops rebase --all\n", u.Stack.Name, strings.Join(u.Affected, ", "))
			}
			return nil
		},
	}
	addJSON(update, e)
	c.AddCommand(list, build, update)
	return c
}

func imageCell(i apitype.StackImage) string {
	if i.Digest == "" {
		return "-"
	}
	return fmt.Sprintf("%s (%d packages, %s, %s)", short(i.Digest), i.Packages, human(i.Size), i.Created.Local().Format(time.DateOnly))
}

func printChanges(e *env, what string, cs []apitype.PackageChange) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(e.stdout, "%s:\n", what)
	for _, c := range cs {
		switch {
		case c.From == "":
			fmt.Fprintf(e.stdout, "  + %s %s\n", c.Package, c.To)
		case c.To == "":
			fmt.Fprintf(e.stdout, "  - %s %s\n", c.Package, c.From)
		default:
			fmt.Fprintf(e.stdout, "    %s %s -> %s\n", c.Package, c.From, c.To)
		}
	}
}

func newRebase(e *env) *cobra.Command {
	var all, force bool
	c := &cobra.Command{
		Use:   "rebase APP | --all",
		Short: "Put apps on their stack's current run image without rebuilding (health-gated, like a deploy)",
		Args: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) || len(args) > 1 {
				return usageError{fmt.Errorf("give one APP or --all")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			apps := args
			if all {
				list, err := e.client().Apps(cmd.Context())
				if err != nil {
					return err
				}
				apps = nil
				for _, a := range list {
					if a.Release > 0 {
						apps = append(apps, a.Name)
					}
				}
			}
			var results []*apitype.Rebase
			var failed []string
			for _, app := range apps {
				p := newProgress(e.stderr, e.json)
				ev, err := e.client().Rebase(cmd.Context(), app, force, p.event)
				p.done()
				if err != nil {
					if !all {
						return err
					}
					fmt.Fprintf(e.stderr, "noops: rebasing %s: %v\n", app, err)
					failed = append(failed, app)
					continue
				}
				results = append(results, ev.Rebase)
				if !e.json {
					r := ev.Rebase
					if r.Unchanged {
						fmt.Fprintf(e.stdout, "%s: already on the current run image (v%d)\n", app, r.Release.Number)
					} else {
						fmt.Fprintf(e.stdout, "%s: v%d is live, rebased (%d package changes)\n", app, r.Release.Number, len(r.Changes))
					}
				}
			}
			if e.json {
				if err := e.printJSON(results); err != nil {
					return err
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d apps were not rebased: %s", len(failed), len(apps), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, "rebase every app with a live release")
	c.Flags().BoolVar(&force, "force", false, "rebase even when the new run image removes packages the app had")
	addJSON(c, e)
	return c
}

func newSBOM(e *env) *cobra.Command {
	var format string
	var release int
	c := &cobra.Command{
		Use:   "sbom APP",
		Short: "Print the SBOM of an app's live release: OS packages and app dependencies",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := e.client().SBOM(cmd.Context(), args[0], release, format)
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(b)
			return err
		},
	}
	c.Flags().StringVar(&format, "format", "cyclonedx", "cyclonedx (CycloneDX 1.6 JSON), spdx (SPDX 2.3 JSON) or inventory")
	c.Flags().IntVar(&release, "release", 0, "a release number (default: the live one)")
	return c
}

func newGC(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "gc",
		Short: "Clean up now: releases beyond the newest 10 per app, images nothing uses, build caches over 5 GiB",
		Long: "noops cleans up by itself after each deploy and every hour; gc does it now. It never deletes a live\n" +
			"release, one that sandboxes run, a kept release's image, a stack image, or anything younger than 10 minutes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := e.client().GC(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(rep)
			}
			n := 0
			for app, rels := range rep.Releases {
				n += len(rels)
				fmt.Fprintf(e.stdout, "%s: deleted releases %v\n", app, rels)
			}
			for app, why := range rep.Skipped {
				fmt.Fprintf(e.stdout, "%s: left alone (%s)\n", app, why)
			}
			fmt.Fprintf(e.stdout, "removed %d releases, %d images (%d blobs, %d layer folders), %s; %d build caches, %s\n",
				n, rep.Images, rep.Blobs, rep.Layers, human(rep.Freed), len(rep.CachesRemoved), human(rep.CacheFreed))
			return nil
		},
	}
	addJSON(c, e)
	return c
}
