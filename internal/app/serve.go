package app

import (
	"context"
	"time"

	"noops/internal/cli"
	"noops/internal/observe/export"
)

// Serve runs the platform until ctx ends, for `noops server`.
func Serve(ctx context.Context, o cli.ServerOptions) error {
	a, err := New(Config{Data: o.Data, Domain: o.Domain, HTTPS: o.HTTPS, HTTP: o.HTTP, Subnet: o.Subnet, BuildSubnet: o.BuildSubnet,
		StackDebs: o.StackDebs, Logger: o.Logger, Version: o.Version, Internal: o.Internal,
		Protection: Protection{WAFRules: o.WAFRules, BanAllow: o.BanAllow, TrustedProxies: o.TrustedProxies, Flood: o.Flood,
			Webhooks: o.NotifyWebhooks, Slack: o.NotifySlack, Alertmanager: o.NotifyAlertmanager},
		Observe: Observe{LogRetention: o.LogRetention, TraceRetention: o.TraceRetention, MetricRetention: o.MetricRetention,
			LogMaxBytes: o.LogMaxBytes, TraceMaxBytes: o.TraceMaxBytes, MetricMaxBytes: o.MetricMaxBytes,
			Export: export.Config{Endpoint: o.OTLPEndpoint, Protocol: o.OTLPProtocol, Headers: o.OTLPHeaders, AllowInsecure: o.OTLPInsecure}},
		Events: Events{NATS: o.NATS, Creds: o.NATSCreds, Replicas: o.EventReplicas, MaxEventSize: o.EventSize}})
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	if o.Ready != nil {
		o.Ready(a.HTTPSAddr())
	}
	<-ctx.Done()
	o.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if o.StopSandboxes {
		if err := a.StopSandboxes(sctx); err != nil {
			o.Logger.Warn("stopping sandboxes", "err", err)
		}
	}
	return a.Stop(sctx)
}
