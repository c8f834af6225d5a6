// Command waf is the benchmark of issue 6: the gateway's WAF (the shield
// with Coraza and the OWASP CRS v4, block mode, paranoia level 1) against
// Coraza's own net/http middleware running the same rules, and against the
// same gateway with the WAF off, all over HTTPS on 127.0.0.1.
//
//	waf [--conns 32] [--duration 5s] [--rounds 3] [--warmup 1s]
//	    [--sizes 1,4,16,64] [--out-dir bench/out] [--server-procs N]
//	    [--profile auto|on|off] [--profile-seconds 10]
//	waf serve --mode noops|coraza|off --cert FILE --key FILE
//
// Without "serve" it is the driver: it makes an ECDSA P-256 certificate,
// starts the three servers as processes of their own (this binary with
// "serve", GOMAXPROCS --server-procs each), checks that each is what it
// claims (an attack in a query and in a form body is refused by noops and
// coraza with a 403 and let through by off; benign requests get the app's
// 200), then measures:
//
//  1. a GET with a query string and browser headers, and a 4 KB form
//     POST, on each server: --conns keep-alive connections (TLS 1.3,
//     HTTP/1.1), each sending one request after the other, --warmup then
//     --duration per server per kind, servers in turns for --rounds rounds
//     (the order rotates each round); the best round counts;
//  2. form POSTs of --sizes KB through noops and coraza, the same way.
//
// Reported per server and kind: requests/s, p50 and p99 latency, µs per
// request (1/throughput) and the server process's CPU µs per request; the
// ratios noops/coraza and noops/off. Every answer must be a 200: any other
// is counted and fails the run (exit 1), with the first one shown.
// Tables go to stdout, progress to stderr, the results to
// OUT-DIR/waf.json. --profile on (or auto, when noops is slower than
// coraza somewhere) then restarts noops and coraza, loads each alone and
// saves its CPU profile and allocations over --profile-seconds
// (OUT-DIR/waf-SERVER-KIND-{cpu,allocs0,allocs}.out).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		err = serve(os.Args[2:])
	} else {
		err = drive(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "waf:", err)
		os.Exit(1)
	}
}

type config struct {
	conns          int
	duration       time.Duration
	warmup         time.Duration
	rounds         int
	sizes          []int // bytes
	outDir         string
	serverProcs    int
	profile        string
	profileSeconds int
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("waf", flag.ExitOnError)
	conns := fs.Int("conns", 32, "keep-alive connections per server")
	duration := fs.Duration("duration", 5*time.Second, "length of one round of one server and kind")
	warmup := fs.Duration("warmup", time.Second, "load before each measurement, not counted")
	rounds := fs.Int("rounds", 3, "rounds per server and kind")
	sizes := fs.String("sizes", "1,4,16,64", "form body sizes in KB for the cost-per-size table")
	outDir := fs.String("out-dir", "bench/out", "where waf.json and the profiles go")
	procs := fs.Int("server-procs", runtime.NumCPU(), "GOMAXPROCS of each server process")
	profile := fs.String("profile", "auto", "CPU profiles of noops and coraza afterwards: on, off, or auto (when noops is slower)")
	profileSeconds := fs.Int("profile-seconds", 10, "length of each profile")
	_ = fs.Parse(args)
	c := config{conns: *conns, duration: *duration, warmup: *warmup, rounds: *rounds, outDir: *outDir,
		serverProcs: *procs, profile: *profile, profileSeconds: *profileSeconds}
	for _, f := range strings.Split(*sizes, ",") {
		kb, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || kb < 1 || kb > 1024 {
			return c, fmt.Errorf("--sizes %q: give sizes of 1 to 1024 KB, comma-separated", *sizes)
		}
		c.sizes = append(c.sizes, kb<<10)
	}
	// The run is bounded: it stops by itself within minutes.
	switch {
	case c.conns < 1 || c.conns > 256:
		return c, errors.New("--conns must be 1-256 (the gateway allows 256 per client address)")
	case c.rounds < 1 || c.rounds > 20:
		return c, errors.New("--rounds must be 1-20")
	case c.duration < 100*time.Millisecond || c.duration > time.Minute:
		return c, errors.New("--duration must be 100ms-1m")
	case c.warmup < 0 || c.warmup > time.Minute:
		return c, errors.New("--warmup must be 0-1m")
	case c.serverProcs < 1 || c.serverProcs > 256:
		return c, errors.New("--server-procs must be 1-256")
	case c.profile != "auto" && c.profile != "on" && c.profile != "off":
		return c, fmt.Errorf("--profile %q: use auto, on or off", c.profile)
	case c.profileSeconds < 1 || c.profileSeconds > 60:
		return c, errors.New("--profile-seconds must be 1-60")
	}
	return c, nil
}

func drive(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "noops-bench-waf.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cl, certFile, keyFile, err := makeCert(work)
	if err != nil {
		return err
	}
	set := &servers{}
	defer set.stop()
	for _, name := range []string{serverNoops, serverCoraza, serverOff} {
		fmt.Fprintf(os.Stderr, "starting %s (loads the CRS)\n", name)
		if err := set.start(name, certFile, keyFile, cfg); err != nil {
			return err
		}
	}
	if err := probe(cl, set); err != nil {
		return err
	}
	rep, err := measureAll(cl, set, cfg)
	if err != nil {
		return err
	}
	rep.print(os.Stdout)
	if cfg.profile == "on" || cfg.profile == "auto" && !rep.NoopsAhead {
		if rep.Profiles, err = profiles(cl, set, cfg, certFile, keyFile); err != nil {
			return err
		}
	}
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.outDir, "waf.json"), append(out, '\n'), 0o644)
}

// makeCert writes a self-signed ECDSA P-256 certificate for *.localhost,
// which every server serves, and returns a client that trusts it.
func makeCert(dir string) (*client, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "noops waf bench"},
		DNSNames: []string{"localhost", "*.localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", "", err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, "", "", err
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, "", "", err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return &client{roots: roots}, certFile, keyFile, nil
}

// probe checks each server is what it claims before anything is measured.
func probe(cl *client, set *servers) error {
	type check struct {
		what string
		req  []byte
		want map[string]int
	}
	all200 := map[string]int{serverNoops: 200, serverCoraza: 200, serverOff: 200}
	refused := map[string]int{serverNoops: 403, serverCoraza: 403, serverOff: 200}
	checks := []check{
		{"benign GET", getKind().req, all200},
		{"XSS in the query", attackGet(), refused},
		{"SQL injection in a form field", attackForm(), refused},
	}
	for _, size := range []int{1 << 10, 4 << 10, 16 << 10, 64 << 10} {
		checks = append(checks, check{"benign form " + sizeLabel(size), formKind(size).req, all200})
	}
	for _, c := range checks {
		for _, s := range set.list {
			status, body, err := cl.once(s.addr, c.req)
			if err != nil {
				return fmt.Errorf("probing %s with a %s: %w", s.name, c.what, err)
			}
			want := c.want[s.name]
			if status != want || status == 200 && string(body) != string(okBody) {
				return fmt.Errorf("probing %s with a %s: got %s, want %d", s.name, c.what, abridge(status, body), want)
			}
		}
		fmt.Fprintf(os.Stderr, "probe %s: noops %d, coraza %d, off %d\n", c.what, c.want[serverNoops], c.want[serverCoraza], c.want[serverOff])
	}
	return nil
}

// modules returns the versions of the modules that matter to the result.
func modules() map[string]string {
	m := map[string]string{"go": runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return m
	}
	for _, d := range bi.Deps {
		if strings.HasPrefix(d.Path, "github.com/corazawaf/") {
			m[strings.TrimPrefix(d.Path, "github.com/corazawaf/")] = d.Version
		}
	}
	return m
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
