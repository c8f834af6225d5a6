package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/spec"
)

func newDemo(e *env) *cobra.Command {
	var https, http string
	var examples []string
	var stop bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "Start a server (data in ./noops-data), deploy the example apps and print working URLs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("data") && os.Getenv("NOOPS_DATA") == "" {
				e.data = "noops-data"
			}
			abs, err := filepath.Abs(e.data)
			if err != nil {
				return fmt.Errorf("resolving %s: %w", e.data, err)
			}
			e.data = abs
			if stop {
				return e.stopServer(cmd.Context())
			}
			return e.demo(cmd.Context(), https, http, examples)
		},
	}
	c.Flags().StringVar(&https, "https", envOr("NOOPS_HTTPS", ":443"), "HTTPS address for a server the demo starts (also NOOPS_HTTPS)")
	c.Flags().StringVar(&http, "http", envOr("NOOPS_HTTP", ":80"), "HTTP address for a server the demo starts, \"off\" disables (also NOOPS_HTTP)")
	c.Flags().StringSliceVar(&examples, "example", []string{"examples/hello-go", "examples/hello-static", "examples/hello-node",
		"examples/hello-python", "examples/worker-procfile",
		"examples/orders/ledger", "examples/orders/billing", "examples/orders/web", "examples/slack-echo"}, "app folders to deploy, in order")
	c.Flags().BoolVar(&stop, "stop", false, "stop the demo's server and its sandboxes")
	return c
}

func (e *env) demo(ctx context.Context, https, http string, examples []string) error {
	if err := e.ensureServer(ctx, https, http); err != nil {
		return err
	}
	cl := e.client()
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	pem, err := cl.CARoot(ctx)
	if err != nil {
		return err
	}
	caFile := filepath.Join(e.data, "ca-root.pem")
	if err := os.WriteFile(caFile, pem, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", caFile, err)
	}
	var live []apitype.DeployEvent
	for _, dir := range examples {
		ev, err := e.deploy(ctx, dir, "")
		if err != nil {
			return fmt.Errorf("deploying %s: %w", dir, err)
		}
		if m, err := spec.Load(dir); err == nil && m.Access.Policy != spec.AccessPublic {
			// A function behind sign-in (examples/orders/billing): events
			// reach it, the public does not.
			fmt.Fprintf(e.stdout, "\n%s v%d is live (not public: it takes events)\n", ev.Release.App, ev.Release.Number)
			continue
		}
		body, err := checkHTTPS(ctx, ev.URL, st.HTTPS, pem)
		if err != nil {
			return errkind.WithHint(errkind.Unavailable, fmt.Errorf("%s was deployed but does not answer over HTTPS: %w", ev.URL, err),
				"see `noops --data "+e.data+" ps "+ev.Release.App+"` and "+filepath.Join(e.data, "server.log"))
		}
		fmt.Fprintf(e.stdout, "\n%s v%d is live and answered: %q\n", ev.Release.App, ev.Release.Number, firstLine(body))
		live = append(live, ev)
	}
	if len(live) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	for i, ev := range live {
		label := "       "
		if i == 0 {
			label = "  URLs:"
		}
		fmt.Fprintf(e.stdout, "%s %s\n", label, ev.URL)
	}
	first := live[0]
	fmt.Fprintf(e.stdout, "  try:   curl --cacert %s %s\n", caFile, first.URL)
	fmt.Fprintf(e.stdout, "  more:  noops --data %s ps %s | logs %s | metrics %s | releases %s | sbom %s | monitors | alerts\n", e.data,
		first.Release.App, first.Release.App, first.Release.App, first.Release.App, first.Release.App)
	fmt.Fprintf(e.stdout, "  stop:  noops --data %s demo --stop\n", e.data)
	return nil
}

// ensureServer reuses the server of e.data or starts one in the background.
func (e *env) ensureServer(ctx context.Context, https, http string) error {
	if _, err := e.client().Status(ctx); err == nil {
		fmt.Fprintf(e.stderr, "==> using the server already running on %s\n", e.data)
		return nil
	}
	if err := os.MkdirAll(e.data, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", e.data, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the noops binary: %w", err)
	}
	logPath := filepath.Join(e.data, "server.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", logPath, err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, "server", "--data", e.data, "--https", https, "--http", http, "--stop-sandboxes")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the server: %w", err)
	}
	fmt.Fprintf(e.stderr, "==> started noops server (pid %d, log %s)\n", cmd.Process.Pid, logPath)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		if _, err := e.client().Status(ctx); err == nil {
			return nil
		}
		select {
		case <-exited:
			return errkind.WithHint(errkind.Unavailable, fmt.Errorf("the server stopped at start: %s", lastLine(logPath)), "see "+logPath)
		case <-deadline:
			return errkind.WithHint(errkind.Unavailable, errors.New("the server did not come up within 30s"), "see "+logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *env) stopServer(ctx context.Context) error {
	st, err := e.client().Status(ctx)
	if err != nil {
		return err
	}
	p, err := os.FindProcess(st.Pid)
	if err == nil {
		err = p.Signal(syscall.SIGTERM)
	}
	if err != nil {
		return fmt.Errorf("stopping server pid %d: %w", st.Pid, err)
	}
	for i := 0; i < 300; i++ {
		if err := p.Signal(syscall.Signal(0)); err != nil {
			fmt.Fprintf(e.stdout, "stopped the server (pid %d) and its sandboxes\n", st.Pid)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errkind.Errorf(errkind.Unavailable, "the server (pid %d) did not stop within 30s", st.Pid)
}

// checkHTTPS fetches url over HTTPS, trusting only the given root, dialing
// the gateway's address directly so that name resolution cannot interfere.
func checkHTTPS(ctx context.Context, url, gatewayAddr string, rootPEM []byte) (string, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		return "", errors.New("the server's CA root is not valid PEM")
	}
	_, port, err := net.SplitHostPort(gatewayAddr)
	if err != nil {
		return "", fmt.Errorf("reading gateway address %q: %w", gatewayAddr, err)
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("answered %s", resp.Status)
	}
	return string(b), nil
}

func firstLine(body string) string {
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(stripTags(l))
		if l != "" && !strings.HasPrefix(l, "<!") {
			return l
		}
	}
	return strconv.Quote(body)
}

func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
