package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
)

func newLogs(e *env) *cobra.Command {
	var follow bool
	var lines int
	c := &cobra.Command{
		Use:   "logs APP [-f]",
		Short: "Show the output of an app's sandboxes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.client().Logs(cmd.Context(), args[0], lines, follow, func(raw []byte) error {
				if e.json {
					_, err := fmt.Fprintf(e.stdout, "%s\n", raw)
					return err
				}
				var l struct {
					Time    time.Time `json:"time"`
					Sandbox string    `json:"sandbox"`
					Stream  string    `json:"stream"`
					Line    string    `json:"line"`
				}
				if err := json.Unmarshal(raw, &l); err != nil {
					_, err := fmt.Fprintf(e.stdout, "%s\n", raw)
					return err
				}
				_, err := fmt.Fprintf(e.stdout, "%s %s %s\n", l.Time.Local().Format("15:04:05.000"), l.Sandbox, l.Line)
				return err
			})
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	c.Flags().IntVarP(&lines, "lines", "n", 100, "how many recent lines to show")
	addJSON(c, e)
	return c
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
