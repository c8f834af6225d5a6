package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // the debug listener's profiles
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	corazahttp "github.com/corazawaf/coraza/v3/http"

	"noops/internal/gateway"
	"noops/internal/gateway/ban"
	"noops/internal/gateway/ratelimit"
	"noops/internal/gateway/waf"
	"noops/internal/shield"
	"noops/internal/spec"
	"noops/internal/store"
)

// The servers under test.
const (
	serverNoops  = "noops"  // the gateway with the shield, WAF block at PL1
	serverCoraza = "coraza" // coraza/v3/http's middleware around the app
	serverOff    = "off"    // the gateway with the shield, WAF off for the app
)

// corazaDirectives build the peer's WAF as a Coraza user does: Coraza's
// recommended configuration, the CRS setup example, the platform's
// method override (shield.Defaults, so both run the same rules), the CRS,
// the engine on.
var corazaDirectives = "Include @coraza.conf-recommended\nInclude @crs-setup.conf.example\n" +
	shield.Defaults + "\nInclude @owasp_crs/*.conf\nSecRuleEngine On"

// okBody is the app's answer.
var okBody = []byte(`{"ok":true}` + "\n")

// app is the handler behind every server: it reads the whole body and
// answers a small 200. A body shorter than its Content-Length gets a 400,
// so a 200 says the app saw all of it.
func app(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil || r.ContentLength >= 0 && n != r.ContentLength {
		http.Error(w, fmt.Sprintf("the app read %d of %d body bytes: %v", n, r.ContentLength, err), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(okBody))}
	w.Write(okBody)
}

// ready is the line a server prints on stdout once it serves.
type ready struct {
	HTTPS string `json:"https"`
	Debug string `json:"debug"` // net/http/pprof, plain HTTP
	Rules int    `json:"rules"`
}

// serve runs one server until SIGTERM or SIGINT.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	mode := fs.String("mode", "", "noops, coraza or off")
	certFile := fs.String("cert", "", "the server certificate (PEM)")
	keyFile := fs.String("key", "", "its key (PEM)")
	_ = fs.Parse(args)
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("loading the certificate: %w", err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	dln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(dln, http.DefaultServeMux)

	var (
		rd   ready
		stop func()
	)
	switch *mode {
	case serverNoops, serverOff:
		rd, stop, err = startNoops(ctx, cert, *mode)
	case serverCoraza:
		rd, stop, err = startCoraza(cert)
	default:
		err = fmt.Errorf("--mode %q: use noops, coraza or off", *mode)
	}
	if err != nil {
		return err
	}
	rd.Debug = dln.Addr().String()
	line, _ := json.Marshal(rd)
	fmt.Printf("%s\n", line)
	<-ctx.Done()
	stop()
	return nil
}

// startNoops runs the gateway as the platform wires it (internal/app):
// a ban list, the shield with the CRS engine in front of one app, and
// the app on a loopback listener of the same process, as its upstream.
// The flood rule stays on with its limit raised: one client sending
// 10,000 requests a second is the benchmark, not a flood.
func startNoops(ctx context.Context, cert tls.Certificate, mode string) (ready, func(), error) {
	eng, err := waf.New(waf.Config{Directives: shield.Defaults})
	if err != nil {
		return ready{}, nil, err
	}
	var gw *gateway.Gateway
	var sh *shield.Shield
	bans := ban.New(ban.Config{
		OnBan: func(b ban.Ban) {
			if p, err := netip.ParsePrefix(b.Prefix); err == nil {
				gw.CloseClients(p)
			}
			sh.OnBan(b)
		},
		OnLift: func(b ban.Ban) { sh.OnLift(b) }})
	flood := shield.DefaultFlood
	flood.Limit = ratelimit.MaxLimit
	sh, err = shield.New(shield.Config{Engine: eng, Bans: bans, Flood: flood,
		Page: func(w http.ResponseWriter, r *http.Request, status int, why string) { gw.ShieldPage(w, r, status, why) }})
	if err != nil {
		return ready{}, nil, err
	}
	wafMode := spec.WAFBlock
	if mode == serverOff {
		wafMode = string(waf.Off)
	}
	cfg, err := json.Marshal(spec.Config{WAF: spec.WAF{Mode: wafMode, Paranoia: 1}})
	if err != nil {
		return ready{}, nil, err
	}
	if err := sh.SetRelease(store.Release{App: "app", Number: 1, Config: cfg}); err != nil {
		return ready{}, nil, err
	}

	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ready{}, nil, err
	}
	up := &http.Server{Handler: http.HandlerFunc(app), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go up.Serve(uln)

	gw = gateway.New(gateway.Config{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "off", Domain: "localhost",
		TLS:    func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		Door:   gateway.DoorFunc(func(a netip.Addr) bool { _, b := bans.Banned(a); return b }),
		Shield: sh,
		Strike: sh.Strike})
	gw.SetBackends("app", []gateway.Backend{{ID: "app-1", Addr: uln.Addr().String()}}, "")
	bctx, bcancel := context.WithCancel(ctx)
	go bans.Run(bctx)
	if err := sh.Start(ctx); err != nil {
		bcancel()
		return ready{}, nil, err
	}
	if err := gw.Start(ctx); err != nil {
		bcancel()
		sh.Stop(context.Background())
		return ready{}, nil, err
	}
	https, _ := gw.Addr()
	stop := func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		gw.Stop(sctx)
		sh.Stop(sctx)
		bcancel()
		up.Shutdown(sctx)
	}
	return ready{HTTPS: https.String(), Rules: eng.Rules()}, stop, nil
}

// startCoraza runs the peer: coraza/v3/http.WrapHandler around the same
// app, served by net/http over TLS with the same certificate.
func startCoraza(cert tls.Certificate) (ready, func(), error) {
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(corazaDirectives))
	if err != nil {
		return ready{}, nil, fmt.Errorf("loading Coraza with the CRS: %w", err)
	}
	rules := 0
	if r, ok := w.(experimental.WAFWithRules); ok {
		rules = r.RulesCount()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ready{}, nil, err
	}
	srv := &http.Server{
		Handler:           corazahttp.WrapHandler(w, http.HandlerFunc(app)),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "waf serve coraza:", err)
		}
	}()
	stop := func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}
	return ready{HTTPS: ln.Addr().String(), Rules: rules}, stop, nil
}
