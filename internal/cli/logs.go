package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
)

func newLogs(e *env) *cobra.Command {
	var q apitype.LogQuery
	var since, until, lines string
	var fields []string
	c := &cobra.Command{
		Use:   "logs APP [-f] [--since D] [--grep TEXT] [--json]",
		Short: "Show an app's logs: its output, the gateway's access log, platform events",
		Long: `Show an app's logs from the platform's log store: what its sandboxes
print (stdout, stderr), the gateway's access log (one line per request,
with its trace ID), the platform's events about it and what the app sends
over OTLP. Without --since, the last 100 lines; with it, all lines since.`,
		Example: `  noops logs shop -f
  noops logs shop --since 1h --grep timeout
  noops logs shop --stream access --field status=502
  noops logs shop --trace 4bf92f3577b34da6a3ce929d0e0e4736 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if q.From, err = parseWhen("--since", since); err != nil {
				return err
			}
			if q.To, err = parseWhen("--until", until); err != nil {
				return err
			}
			switch {
			case lines == "all":
				q.Lines = -1
			case lines != "":
				if _, err := fmt.Sscan(lines, &q.Lines); err != nil || q.Lines < 0 {
					return usageError{fmt.Errorf("--lines %q: give a count or all", lines)}
				}
			case q.From.IsZero():
				q.Lines = 100
			default:
				q.Lines = -1
			}
			for _, f := range fields {
				k, v, ok := strings.Cut(f, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--field %q: give NAME=VALUE", f)}
				}
				if q.Fields == nil {
					q.Fields = map[string]string{}
				}
				q.Fields[k] = v
			}
			return e.client().Logs(cmd.Context(), args[0], q, func(l apitype.LogLine) error {
				if e.json {
					b, err := json.Marshal(l)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(e.stdout, "%s\n", b)
					return err
				}
				return printLogLine(e.stdout, l)
			})
		},
	}
	c.Flags().BoolVarP(&q.Follow, "follow", "f", false, "keep printing new lines")
	c.Flags().StringVarP(&lines, "lines", "n", "", "how many of the last matching lines to show, or all (default 100, all with --since)")
	c.Flags().StringVar(&since, "since", "", "only lines at or after this time: RFC 3339 or a duration ago (1h)")
	c.Flags().StringVar(&until, "until", "", "only lines before this time (same forms as --since)")
	c.Flags().StringVar(&q.Grep, "grep", "", "only lines containing this text")
	c.Flags().StringVar(&q.Regexp, "regexp", "", "only lines matching this RE2 expression")
	c.Flags().StringArrayVar(&fields, "field", nil, "only lines whose JSON field NAME equals VALUE: NAME=VALUE (repeatable; access lines have method, path, status, client, user…)")
	c.Flags().StringSliceVar(&q.Streams, "stream", nil, "only these streams: stdout, stderr, access, platform, otlp")
	c.Flags().StringVar(&q.TraceID, "trace", "", "only lines of this trace ID")
	addJSON(c, e)
	return c
}

// printLogLine writes one line for people: time, source, text.
func printLogLine(w io.Writer, l apitype.LogLine) error {
	src := l.Sandbox
	if src == "" {
		src = l.Stream
	}
	text := l.Line
	if a := l.Access; a != nil {
		text = fmt.Sprintf("%s %s %s %d %.1fms %dB %s", a.Client, a.Method, a.Path, a.Status, a.DurationMs, a.BytesOut, quoteUA(a.UserAgent))
		if a.User != "" {
			text += " user=" + a.User
		}
	}
	if l.Severity != "" && l.Stream != "access" {
		text = l.Severity + " " + text
	}
	if l.TraceID != "" {
		text += " trace_id=" + l.TraceID
	}
	_, err := fmt.Fprintf(w, "%s %s %s\n", l.Time.Local().Format("2006-01-02 15:04:05.000"), src, text)
	return err
}

func quoteUA(ua string) string {
	if ua == "" {
		return `"-"`
	}
	return fmt.Sprintf("%q", ua)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
