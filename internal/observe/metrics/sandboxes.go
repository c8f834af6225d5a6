package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SandboxUsage is one running sandbox's resource use, from its cgroup.
type SandboxUsage struct {
	App, Sandbox string
	CPU          time.Duration // CPU time used so far
	Memory       int64         // bytes in use now
	Pids         int64         // processes and threads now
}

// Sandboxes registers the resource metrics of every running sandbox,
// read at scrape time from usage (the supervisor's sandboxes and the
// runtime driver's Usage):
// noops_sandbox_cpu_seconds_total, noops_sandbox_memory_bytes and
// noops_sandbox_pids, labelled app and sandbox.
func (m *Metrics) Sandboxes(usage func(context.Context) []SandboxUsage) {
	m.reg.MustRegister(sandboxCollector{usage})
}

var (
	sandboxCPUDesc = prometheus.NewDesc("noops_sandbox_cpu_seconds_total", "CPU time used by a sandbox's processes, user and system (cgroup cpu.stat usage_usec).", []string{"app", "sandbox"}, nil)
	sandboxMemDesc = prometheus.NewDesc("noops_sandbox_memory_bytes", "Memory in use by a sandbox, page cache included (cgroup memory.current).", []string{"app", "sandbox"}, nil)
	sandboxPidDesc = prometheus.NewDesc("noops_sandbox_pids", "Processes and threads in a sandbox (cgroup pids.current).", []string{"app", "sandbox"}, nil)
)

type sandboxCollector struct {
	f func(context.Context) []SandboxUsage
}

func (c sandboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sandboxCPUDesc
	ch <- sandboxMemDesc
	ch <- sandboxPidDesc
}

func (c sandboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, u := range c.f(ctx) {
		ch <- prometheus.MustNewConstMetric(sandboxCPUDesc, prometheus.CounterValue, u.CPU.Seconds(), u.App, u.Sandbox)
		ch <- prometheus.MustNewConstMetric(sandboxMemDesc, prometheus.GaugeValue, float64(u.Memory), u.App, u.Sandbox)
		ch <- prometheus.MustNewConstMetric(sandboxPidDesc, prometheus.GaugeValue, float64(u.Pids), u.App, u.Sandbox)
	}
}
