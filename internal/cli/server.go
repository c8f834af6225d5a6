package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

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
	// Protection (issue 6): see `noops server --help`.
	WAFRules           string
	BanAllow           []netip.Prefix
	TrustedProxies     []netip.Prefix
	Flood              int
	NotifyWebhooks     []string
	NotifySlack        []string
	NotifyAlertmanager []string
	// Telemetry (issue 8): retention of the embedded stores; export to an
	// OTLP backend.
	LogRetention, TraceRetention, MetricRetention time.Duration
	LogMaxBytes, TraceMaxBytes, MetricMaxBytes    int64
	OTLPEndpoint                                  string
	OTLPProtocol                                  string
	OTLPHeaders                                   map[string]string
	OTLPInsecure                                  bool
	// Events (issue 7): an external NATS cluster, the event size limit.
	NATS          string
	NATSCreds     string
	EventReplicas int
	EventSize     int
	Logger        *slog.Logger
	Version       string
	Ready         func(https string) // called once the platform serves
}

// ServeFunc runs the platform until ctx ends.
type ServeFunc func(ctx context.Context, o ServerOptions) error

func newServer(e *env) *cobra.Command {
	var o ServerOptions
	var level string
	var banAllow, proxies []string
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
			var err error
			if o.BanAllow, err = parsePrefixes("--ban-allow", banAllow); err != nil {
				return err
			}
			if o.TrustedProxies, err = parsePrefixes("--trusted-proxy", proxies); err != nil {
				return err
			}
			o.NotifyWebhooks = append(o.NotifyWebhooks, envList("NOOPS_NOTIFY_WEBHOOK")...)
			o.NotifySlack = append(o.NotifySlack, envList("NOOPS_NOTIFY_SLACK")...)
			o.NotifyAlertmanager = append(o.NotifyAlertmanager, envList("NOOPS_NOTIFY_ALERTMANAGER")...)
			if v := os.Getenv("NOOPS_OTLP_HEADERS"); v != "" {
				if o.OTLPHeaders == nil {
					o.OTLPHeaders = map[string]string{}
				}
				for _, kv := range envList("NOOPS_OTLP_HEADERS") {
					k, val, ok := strings.Cut(kv, "=")
					if !ok {
						return usageError{fmt.Errorf("NOOPS_OTLP_HEADERS: give NAME=VALUE pairs separated by commas")}
					}
					o.OTLPHeaders[strings.TrimSpace(k)] = val
				}
			}
			for _, u := range append(append(append([]string(nil), o.NotifyWebhooks...), o.NotifySlack...), o.NotifyAlertmanager...) {
				if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
					return usageError{fmt.Errorf("notification sink %q: give an http:// or https:// URL", redactURL(u))}
				}
			}
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
	c.Flags().StringVar(&o.WAFRules, "waf-rules", "", "file of extra ModSecurity directives (rule exclusions, local rules) loaded after the Core Rule Set setup")
	c.Flags().StringSliceVar(&banAllow, "ban-allow", nil, "client IP or CIDR never banned (repeatable)")
	c.Flags().StringSliceVar(&proxies, "trusted-proxy", nil, "proxy IP or CIDR whose X-Forwarded-For the forwarded_ip rate key believes (repeatable)")
	c.Flags().IntVar(&o.Flood, "flood", 0, "requests per minute from one client that ban it (0: 6000; -1: off)")
	c.Flags().StringSliceVar(&o.NotifyWebhooks, "notify-webhook", nil, "URL that receives security events as JSON (repeatable; also NOOPS_NOTIFY_WEBHOOK, comma-separated)")
	c.Flags().StringSliceVar(&o.NotifySlack, "notify-slack", nil, "Slack-compatible incoming webhook URL for security events (repeatable; prefer NOOPS_NOTIFY_SLACK: URLs on the command line are visible to ps)")
	c.Flags().StringSliceVar(&o.NotifyAlertmanager, "notify-alertmanager", nil, "URL that receives alerts as Alertmanager webhook JSON (repeatable; also NOOPS_NOTIFY_ALERTMANAGER)")
	c.Flags().DurationVar(&o.LogRetention, "log-retention", 0, "how long logs are kept (0: 7 days)")
	c.Flags().Int64Var(&o.LogMaxBytes, "log-max-bytes", 0, "most bytes the log store keeps on disk (0: 1 GiB)")
	c.Flags().DurationVar(&o.TraceRetention, "trace-retention", 0, "how long traces are kept (0: 7 days)")
	c.Flags().Int64Var(&o.TraceMaxBytes, "trace-max-bytes", 0, "most bytes the trace store keeps on disk (0: 512 MiB)")
	c.Flags().DurationVar(&o.MetricRetention, "metric-retention", 0, "how long the metric history is kept (0: 15 days)")
	c.Flags().Int64Var(&o.MetricMaxBytes, "metric-max-bytes", 0, "most bytes the metric history keeps on disk (0: 1 GiB)")
	c.Flags().StringVar(&o.OTLPEndpoint, "otlp-endpoint", envOr("NOOPS_OTLP_ENDPOINT", ""), "also export traces, metrics and logs to this OTLP receiver (https://host:4318; also NOOPS_OTLP_ENDPOINT)")
	c.Flags().StringVar(&o.OTLPProtocol, "otlp-protocol", "http/protobuf", "OTLP protocol of --otlp-endpoint: http/protobuf or grpc")
	c.Flags().StringToStringVar(&o.OTLPHeaders, "otlp-header", nil, "header sent to --otlp-endpoint, NAME=VALUE (repeatable; prefer NOOPS_OTLP_HEADERS for secrets)")
	c.Flags().BoolVar(&o.OTLPInsecure, "otlp-insecure", false, "allow plain-text OTLP to a host that is not loopback")
	c.Flags().StringVar(&o.NATS, "nats", envOr("NOOPS_NATS", ""), "URL of an external NATS cluster with JetStream for events (default: the embedded server in DATA/events; also NOOPS_NATS)")
	c.Flags().StringVar(&o.NATSCreds, "nats-creds", envOr("NOOPS_NATS_CREDS", ""), "NATS credentials file (JWT and NKey) for --nats (also NOOPS_NATS_CREDS)")
	c.Flags().IntVar(&o.EventReplicas, "event-replicas", 1, "replicas of each event stream and bucket on a --nats cluster (3 on a three-node cluster)")
	c.Flags().IntVar(&o.EventSize, "event-size", 0, "largest event (and asynchronous request body) in bytes (0: 1 MiB)")
	return c
}

// parsePrefixes parses IPs and CIDRs (an IP is its own /32 or /128).
func parsePrefixes(flag string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s %q: give an IP address or a CIDR such as 10.0.0.0/8", flag, s)}
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func envList(k string) []string {
	var out []string
	for _, v := range strings.Split(os.Getenv(k), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// redactURL keeps a URL's scheme and host: webhook paths are secrets.
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return u[:i+3] + rest[:j] + "/…"
		}
		return u
	}
	if len(u) > 12 {
		return u[:12] + "…"
	}
	return u
}

func envOr(k, def string) string {
	if v := strings.TrimSpace(os.Getenv(k)); v != "" {
		return v
	}
	return def
}
