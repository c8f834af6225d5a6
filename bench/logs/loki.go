package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"noops/internal/observe/logstore"
)

// lokiConfig is a single-process Loki on 127.0.0.1 with filesystem
// storage, no write-ahead log (noops's is gone once it is closed), no
// ingestion limits in the way, and chunks flushed when idle or on
// shutdown. Loki before 2.8 gets the boltdb-shipper index (schema v11),
// later ones TSDB (v13).
var lokiConfig = template.Must(template.New("loki").Parse(`auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {{.HTTP}}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {{.GRPC}}
  log_level: warn
  grpc_server_max_recv_msg_size: 104857600
common:
  path_prefix: {{.Data}}
  storage:
    filesystem:
      chunks_directory: {{.Data}}/chunks
      rules_directory: {{.Data}}/rules
  replication_factor: 1
  ring:
    instance_addr: 127.0.0.1
    kvstore:
      store: inmemory
ingester:
  chunk_idle_period: 30s
  max_chunk_age: 2h
  wal:
    enabled: false
  lifecycler:
    join_after: 0s
    min_ready_duration: 0s
    final_sleep: 0s
schema_config:
  configs:
  - from: 2020-10-24
    store: {{if .TSDB}}tsdb{{else}}boltdb-shipper{{end}}
    object_store: filesystem
    schema: {{if .TSDB}}v13{{else}}v11{{end}}
    index:
      prefix: index_
      period: 24h
limits_config:
  reject_old_samples: false
  ingestion_rate_mb: 4096
  ingestion_burst_size_mb: 4096
  per_stream_rate_limit: 4096MB
  per_stream_rate_limit_burst: 4096MB
{{- if .Analytics}}
analytics:
  reporting_enabled: false
{{- end}}
`))

var versionRE = regexp.MustCompile(`version (\d+)\.(\d+)\.(\d+)`)

// runLoki starts Loki, pushes the lines, flushes and stops it, and
// measures it.
func runLoki(ctx context.Context, cfg config, dir string, recs []logstore.Record) (*sideResult, error) {
	out, _ := exec.CommandContext(ctx, cfg.loki, "-version").CombinedOutput()
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return nil, fmt.Errorf("%s -version printed no Loki version: %q", cfg.loki, firstLine(string(out)))
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	httpPort, grpcPort := freePort(), freePort()
	if httpPort == 0 || grpcPort == 0 {
		return nil, errors.New("no free port on 127.0.0.1")
	}
	var conf bytes.Buffer
	err := lokiConfig.Execute(&conf, map[string]any{"HTTP": httpPort, "GRPC": grpcPort, "Data": data,
		"TSDB": major > 2 || major == 2 && minor >= 8, "Analytics": major > 2 || major == 2 && minor >= 5})
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "loki.yaml")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(cfg.outDir, "logs-loki.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(cfg.loki, "-config.file="+confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.loki, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	if err := waitReady(ctx, base, exited); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	cpu0, t0 := procCPU(pid), time.Now()
	client := &http.Client{Timeout: 2 * time.Minute}
	for i := 0; i < len(recs); i += cfg.batch {
		if err := push(ctx, client, base, recs[i:min(i+cfg.batch, len(recs))]); err != nil {
			return nil, fmt.Errorf("pushing lines %d-: %w", i, err)
		}
	}
	wall, cpu := time.Since(t0), procCPU(pid)-cpu0
	// Write the chunks out: /flush, then a SIGTERM (flush on shutdown).
	if resp, err := post(ctx, client, base+"/flush", nil); err == nil {
		resp.Body.Close()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(2 * time.Minute):
		return nil, errors.New("loki did not stop within 2 minutes of SIGTERM")
	}
	size, err := dirSize(data)
	if err != nil {
		return nil, err
	}
	n := float64(len(recs))
	return &sideResult{What: "Grafana Loki, filesystem storage, JSON pushes of " + strconv.Itoa(cfg.batch) + " lines, one stream per app",
		Version: m[0][len("version "):], WallSeconds: wall.Seconds(), CPUSeconds: cpu.Seconds(), LinesPerSecond: n / wall.Seconds(),
		LinesPerCPUSec: n / cpu.Seconds(), DiskBytes: size, BytesPerLine: float64(size) / n}, nil
}

// push sends one batch: a stream per app, lines in time order, each line
// the record's text (the combined-log-like rendering with its trace ID).
func push(ctx context.Context, client *http.Client, base string, recs []logstore.Record) error {
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	byApp := map[string]*stream{}
	var streams []*stream
	for i := range recs {
		r := &recs[i]
		s := byApp[r.App]
		if s == nil {
			s = &stream{Stream: map[string]string{"app": r.App, "stream": r.Stream}}
			byApp[r.App] = s
			streams = append(streams, s)
		}
		s.Values = append(s.Values, [2]string{strconv.FormatInt(r.Time.UnixNano(), 10), r.Text()})
	}
	body, err := json.Marshal(map[string]any{"streams": streams})
	if err != nil {
		return err
	}
	resp, err := post(ctx, client, base+"/loki/api/v1/push", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var msg bytes.Buffer
		msg.ReadFrom(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("push: %s: %s", resp.Status, strings.TrimSpace(msg.String()))
	}
	return nil
}

func post(ctx context.Context, client *http.Client, url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return client.Do(req)
}

// waitReady polls /ready until Loki answers 200.
func waitReady(ctx context.Context, base string, exited chan error) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("loki exited before it was ready (%v); see bench/out/logs-loki.log", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ready", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("loki was not ready within 90 s; see bench/out/logs-loki.log")
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// procCPU is the user+system CPU time of a process (/proc/PID/stat,
// fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
