// Command coldstart measures cold starts for bench/coldstart.sh: the time
// from a request to the first byte of its response.
//
//	coldstart noops --data DIR --app APP --url URL --ca FILE [--samples N]
//
// waits, before each sample, until the app is at zero replicas with its
// standby sandbox ready, then sends one GET over a TLS connection to the
// gateway that is already open (so no handshake is counted).
//
//	coldstart exec --url URL [--samples N] -- COMMAND ARGS...
//
// runs COMMAND (which starts a container that serves URL, e.g. `runc run`
// or `podman run`) and sends GETs to URL every millisecond from the moment
// it starts until one is answered; the sample is the time from the start
// of COMMAND to that answer's first byte. `--cleanup CMD` runs after each
// sample. Both print one line per sample and a summary as JSON.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"noops/internal/apiclient"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: coldstart noops|exec ..."))
	}
	var samples []time.Duration
	var err error
	switch os.Args[1] {
	case "noops":
		samples, err = noops(os.Args[2:])
	case "exec":
		samples, err = execMode(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: noops or exec", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
	slices.Sort(samples)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(p float64) float64 {
		i := int(p*float64(len(samples))+0.5) - 1
		return ms(samples[min(max(i, 0), len(samples)-1)])
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"samples": len(samples), "p50_ms": q(0.5), "p99_ms": q(0.99),
		"min_ms": ms(samples[0]), "max_ms": ms(samples[len(samples)-1])})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "coldstart:", err)
	os.Exit(1)
}

// noops samples cold starts of an app served by a noops server.
func noops(args []string) ([]time.Duration, error) {
	fs := flag.NewFlagSet("noops", flag.ExitOnError)
	data := fs.String("data", "", "the server's data folder")
	app := fs.String("app", "", "the app, which must scale to zero")
	url := fs.String("url", "", "the app's URL")
	caFile := fs.String("ca", "", "the platform CA's root certificate")
	n := fs.Int("samples", 50, "how many cold starts")
	wait := fs.Duration("timeout", 2*time.Minute, "longest wait for the app to be at zero")
	_ = fs.Parse(args)
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", *caFile)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: 1, IdleConnTimeout: 10 * time.Minute}}
	api := apiclient.New(*data)
	ctx := context.Background()
	var out []time.Duration
	for i := 0; i <= *n; i++ { // sample 0 warms the connection and is dropped
		if err := atZero(ctx, api, *app, *wait); err != nil {
			return nil, err
		}
		d, err := firstByte(client, *url, time.Now())
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		if i > 0 {
			fmt.Fprintf(os.Stderr, "noops cold start %d: %.2f ms\n", i, float64(d.Microseconds())/1000)
			out = append(out, d)
		}
	}
	return out, nil
}

// atZero waits until app has no replica and its standby is ready.
func atZero(ctx context.Context, api *apiclient.Client, app string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		sc, err := api.Scaling(ctx, app)
		if err != nil {
			return err
		}
		if sc.Desired == 0 && sc.Ready == 0 {
			ps, err := api.Ps(ctx, app)
			if err != nil {
				return err
			}
			if len(ps) == 1 && ps[0].State == "standby" {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not reach zero replicas with a standby in %s", app, timeout)
}

// firstByte sends one GET and returns the time from start to the first
// byte of the answer, which must be a 200.
func firstByte(client *http.Client, url string, start time.Time) (time.Duration, error) {
	var first time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return first.Sub(start), nil
}

// execMode samples cold starts of a container started by a command.
func execMode(args []string) ([]time.Duration, error) {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	url := fs.String("url", "", "what the container serves")
	n := fs.Int("samples", 50, "how many cold starts")
	cleanup := fs.String("cleanup", "", "shell command run after each sample (removes the container)")
	name := fs.String("name", "exec", "what to call the samples")
	_ = fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return nil, errors.New("exec: no command after --")
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var out []time.Duration
	for i := 1; i <= *n; i++ {
		d, err := execOnce(client, *url, argv)
		if *cleanup != "" {
			if out, cerr := exec.Command("sh", "-c", *cleanup).CombinedOutput(); cerr != nil {
				return nil, fmt.Errorf("cleanup after sample %d: %v: %s", i, cerr, strings.TrimSpace(string(out)))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		fmt.Fprintf(os.Stderr, "%s cold start %d: %.2f ms\n", *name, i, float64(d.Microseconds())/1000)
		out = append(out, d)
	}
	return out, nil
}

// execOnce starts argv and polls url until it answers 200.
func execOnce(client *http.Client, url string, argv []string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr // a file: a detached container may hold it, no copy to wait for
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := start.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if d, err := firstByte(client, url, start); err == nil {
			return d, nil
		}
		select {
		case err := <-exited:
			if err != nil {
				return 0, fmt.Errorf("%s: %w", argv[0], err)
			}
			exited = nil // a detached start returned: keep polling
		case <-time.After(time.Millisecond):
		}
	}
	return 0, fmt.Errorf("%s never answered", url)
}
