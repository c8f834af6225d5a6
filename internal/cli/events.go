package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
	"noops/internal/errkind"
)

// newPublish is `noops events publish`; `noops events` itself shows the
// platform's own events (scaling.go), dlq the dead letters.
func newPublish(e *env) *cobra.Command {
	var req apitype.PublishRequest
	publish := &cobra.Command{
		Use:   "publish TOPIC DATA|-",
		Short: "Publish an event to a topic (DATA - reads standard input)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := []byte(args[1])
			if args[1] == "-" {
				var err error
				if data, err = io.ReadAll(io.LimitReader(os.Stdin, 64<<20)); err != nil {
					return fmt.Errorf("reading the event from standard input: %w", err)
				}
			}
			r := req
			if utf8.Valid(data) {
				r.Data = string(data)
			} else {
				r.DataBase64 = data
			}
			res, err := e.client().Publish(cmd.Context(), args[0], r)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(res)
			}
			fmt.Fprintf(e.stdout, "published %s to %s (trace %s)\n", res.ID, res.Topic, traceID(res.TraceParent))
			return nil
		},
	}
	publish.Flags().StringVar(&req.Type, "type", "", "CloudEvents type (default dev.noops.event)")
	publish.Flags().StringVar(&req.Source, "source", "", "CloudEvents source (default /noops/api/USER)")
	publish.Flags().StringVar(&req.ID, "id", "", "event ID (default: a new one; the same ID is delivered once)")
	publish.Flags().StringVar(&req.ContentType, "content-type", "", "media type of the data, e.g. application/json")
	publish.Flags().StringVar(&req.PartitionKey, "key", "", "partition key: ordered functions take one key's events in order")
	publish.Flags().StringVar(&req.TraceParent, "traceparent", "", "W3C trace context to continue (default: a new trace)")
	addJSON(publish, e)
	return publish
}

func traceID(tp string) string {
	if p := strings.Split(tp, "-"); len(p) == 4 {
		return p[1]
	}
	return tp
}

func newDLQ(e *env) *cobra.Command {
	c := &cobra.Command{Use: "dlq", Short: "The dead letters of a function: events it did not take, with their last error"}
	list := &cobra.Command{
		Use:   "list APP",
		Short: "List an app's dead letters, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := e.client().DeadLetters(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(ds)
			}
			rows := make([][]string, len(ds))
			for i, d := range ds {
				rows[i] = []string{strconv.FormatUint(d.Seq, 10), d.FailedAt.Local().Format(time.DateTime), d.Origin, d.Event.ID,
					strconv.Itoa(d.Attempts), oneLine(d.Error, 80)}
			}
			e.table("SEQ\tFAILED\tORIGIN\tEVENT\tATTEMPTS\tERROR", rows)
			return nil
		},
	}
	addJSON(list, e)
	show := &cobra.Command{
		Use:   "show APP SEQ",
		Short: "Show one dead letter with its data",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[1])
			if err != nil {
				return err
			}
			d, err := e.client().DeadLetter(cmd.Context(), args[0], seq)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(d)
			}
			ev := d.Event
			fmt.Fprintf(e.stdout, "seq:        %d\nevent:      %s\norigin:     %s\ntype:       %s\nsource:     %s\ntime:       %s\nattempts:   %d\nfailed at:  %s\nerror:      %s\ntrace:      %s\n",
				d.Seq, ev.ID, d.Origin, ev.Type, ev.Source, ev.Time.Local().Format(time.RFC3339), d.Attempts,
				d.FailedAt.Local().Format(time.RFC3339), d.Error, traceID(ev.TraceParent))
			if d.Invocation != "" {
				fmt.Fprintf(e.stdout, "invocation: %s\n", d.Invocation)
			}
			if utf8.Valid(ev.Data) {
				fmt.Fprintf(e.stdout, "data (%d bytes):\n%s\n", len(ev.Data), ev.Data)
			} else {
				fmt.Fprintf(e.stdout, "data: %d bytes of binary (--json shows them in base64)\n", len(ev.Data))
			}
			return nil
		},
	}
	addJSON(show, e)
	var all bool
	replay := &cobra.Command{
		Use:   "replay APP [SEQ...]",
		Short: "Deliver dead letters to the app again (fresh attempts), then remove them",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.ReplayRequest{All: all}
			for _, a := range args[1:] {
				seq, err := parseSeq(a)
				if err != nil {
					return err
				}
				req.Seqs = append(req.Seqs, seq)
			}
			if all == (len(req.Seqs) > 0) {
				return usageError{fmt.Errorf("name the dead letters to replay by their SEQ, or give --all")}
			}
			res, err := e.client().Replay(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "replayed %d dead letters of %s\n", res.Replayed, args[0])
			return nil
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter of the app")
	c.AddCommand(list, show, replay)
	return c
}

func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, usageError{fmt.Errorf("%q is not a dead letter number (the SEQ column of `noops events dlq list`)", s)}
	}
	return n, nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		return string([]rune(s)[:n-1]) + "…"
	}
	return s
}

func newFunctions(e *env) *cobra.Command {
	c := &cobra.Command{Use: "functions", Short: "Invoke apps directly or asynchronously; follow asynchronous invocations"}
	var req apitype.InvokeRequest
	var headers []string
	invoke := &cobra.Command{
		Use:   "invoke APP [DATA|-]",
		Short: "Invoke an app: print its answer, or with --async queue the call and print its invocation ID",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := req
			if len(args) == 2 {
				r.Data = args[1]
				if args[1] == "-" {
					b, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
					if err != nil {
						return fmt.Errorf("reading standard input: %w", err)
					}
					r.Data = string(b)
				}
			}
			r.Header = http.Header{}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return usageError{fmt.Errorf("--header %q: write NAME: VALUE", h)}
				}
				r.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			res, err := e.client().Invoke(cmd.Context(), args[0], r)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(res)
			}
			if res.Invocation != nil {
				fmt.Fprintf(e.stdout, "queued invocation %s (follow it with `noops functions status %s`)\n", res.Invocation.ID, res.Invocation.ID)
				return nil
			}
			_, _ = e.stdout.Write(res.Body)
			if res.Status >= 300 {
				return errkind.Errorf(errkind.Unavailable, "%s answered %d %s", args[0], res.Status, http.StatusText(res.Status))
			}
			return nil
		},
	}
	invoke.Flags().StringVarP(&req.Method, "method", "X", "POST", "HTTP method")
	invoke.Flags().StringVar(&req.Path, "path", "/", "path and query")
	invoke.Flags().StringArrayVarP(&headers, "header", "H", nil, "request header NAME: VALUE (repeatable)")
	invoke.Flags().BoolVar(&req.Async, "async", false, "queue the call (retries, dead letters) and return at once")
	addJSON(invoke, e)
	status := &cobra.Command{
		Use:   "status ID",
		Short: "Show an asynchronous invocation and, once done, the app's answer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := e.client().Invocation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return e.printInvocation(inv)
		},
	}
	addJSON(status, e)
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running asynchronous invocation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := e.client().CancelInvocation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return e.printInvocation(inv)
		},
	}
	addJSON(cancel, e)
	c.AddCommand(invoke, status, cancel)
	return c
}

func (e *env) printInvocation(inv apitype.Invocation) error {
	if e.json {
		return e.printJSON(inv)
	}
	fmt.Fprintf(e.stdout, "invocation %s of %s: %s after %d attempts (%s %s, created %s, trace %s)\n", inv.ID, inv.App, inv.Status,
		inv.Attempts, inv.Method, inv.Path, inv.Created.Local().Format(time.DateTime), inv.TraceID)
	if inv.Error != "" {
		fmt.Fprintf(e.stdout, "error: %s\n", inv.Error)
	}
	if r := inv.Response; r != nil {
		fmt.Fprintf(e.stdout, "answer: %d %s\n", r.Status, http.StatusText(r.Status))
		_, _ = e.stdout.Write(r.Body)
	}
	return nil
}
