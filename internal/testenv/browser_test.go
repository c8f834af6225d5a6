package testenv

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"golang.org/x/sys/unix"

	"noops/internal/apitype"
	"noops/internal/identity"
	"noops/internal/testenv/need"
)

// TestBrowserLoginWithTOTP signs in to a guarded app the way a person does:
// in a real (headless) Chromium, through the real gateway and its TLS, with a
// password and a TOTP code typed into the sign-in form.
func TestBrowserLoginWithTOTP(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	chromium := need.Chromium(t)
	e := Start(t, Options{})
	const app, user, pw = "guarded", "dora", "correct horse battery"
	deployOK(t, e, guardedApp(t, app, "access:\n  policy: authenticated\n  min_trust: 20\n"), app)
	secret := enrolTOTP(t, e, user, pw)

	home := e.URL(app, "/")
	u, _ := url.Parse(home)
	ctx := startBrowser(t, e, chromium, u.Hostname(), 45*time.Second)
	step := stepper(t, ctx)
	signIn := func(code string) *network.Response {
		t.Helper()
		return submitSignIn(t, step(), user, pw, code)
	}

	// Nobody signed in: the browser is sent to the sign-in form.
	resp, err := chromedp.Run(step(), chromedp.NavigateResponse(home))
	if err != nil {
		t.Fatalf("opening %s: %v", home, err)
	}
	if loc := location(t, step()); resp.Status != 200 || loc.Path != "/.noops/login" || loc.Query().Get("rd") != "/" {
		t.Fatalf("anonymous visit to %s ended on %s with status %d, want the sign-in page with rd=/", home, loc, resp.Status)
	}
	if err := chromedp.Do(step(), chromedp.WaitVisible(chromedp.ID("login"))); err != nil {
		t.Fatalf("waiting for the sign-in form: %v", err)
	}

	// A wrong code is refused, says so, sets no cookie and spends no
	// time step.
	resp = signIn(wrongCode(t, secret))
	msg, err := chromedp.Run(step(), chromedp.Text(chromedp.ID("message")))
	if err != nil {
		t.Fatalf("reading the refusal: %v", err)
	}
	if loc := location(t, step()); resp.Status != 401 || loc.Path != "/.noops/login" || !strings.Contains(msg, "wrong one-time code") {
		t.Errorf("wrong code: %s status %d message %q, want the form again, 401, saying the code is wrong", loc, resp.Status, msg)
	}
	if c := sessionCookie(t, step(), home); c != nil {
		t.Errorf("wrong code set a session cookie: %+v", c)
	}

	// The right code: the enrolment spent the current step, so the code is
	// the next one's.
	code, err := identity.TOTPCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	resp = signIn(code)
	if loc := location(t, step()); resp.Status != 200 || loc.Path != "/" {
		t.Fatalf("sign-in with password and TOTP ended on %s with status %d, want the app's / with 200", loc, resp.Status)
	}
	showsApp(t, step(), "after signing in")
	c := sessionCookie(t, step(), home)
	switch {
	case c == nil:
		t.Fatal("signed in, but the browser holds no session cookie")
	case !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Domain != u.Hostname():
		t.Errorf("session cookie %+v, want HttpOnly, Secure, SameSite=Lax, path / and host-only for %s", c, u.Hostname())
	}
	if js, err := chromedp.Run(step(), chromedp.Evaluate[string]("document.cookie")); err != nil || strings.Contains(js, c.Name) {
		t.Errorf("document.cookie = %q, %v; the session cookie must not reach scripts", js, err)
	}

	// The session holds across a reload.
	resp, err = chromedp.RunResponse(step(), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.Reload, page.ReloadParams{})
		return err
	}))
	if err != nil {
		t.Fatalf("reloading: %v", err)
	}
	if loc := location(t, step()); resp.Status != 200 || loc.Path != "/" {
		t.Errorf("reload ended on %s with status %d, want the app's / with 200", loc, resp.Status)
	}
	showsApp(t, step(), "after a reload")
}

// stepper returns a func that bounds one step in the tab ctx: each
// context it returns ends after 15 seconds, or with the test.
func stepper(t *testing.T, ctx context.Context) func() context.Context {
	return func() context.Context {
		c, cancel := context.WithTimeout(ctx, 15*time.Second)
		t.Cleanup(cancel)
		return c
	}
}

// submitSignIn fills in the sign-in form the tab shows, as a person types,
// submits it and returns the response of the page it leads to.
func submitSignIn(t *testing.T, ctx context.Context, user, pw, code string) *network.Response {
	t.Helper()
	field := func(id, v string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(chromedp.Clear(chromedp.ID(id)), chromedp.SendKeys(chromedp.ID(id), v))
	}
	resp, err := chromedp.RunResponse(ctx,
		chromedp.WaitVisible(chromedp.ID("login")),
		field("user", user), field("password", pw), field("code", code),
		chromedp.Click(chromedp.ID("submit")))
	if err != nil {
		t.Fatalf("submitting the sign-in form with code %s: %v", code, err)
	}
	return resp
}

// enrolTOTP adds an admin with a password and a confirmed TOTP enrolment
// and returns the TOTP secret. Confirming spends the current time step.
func enrolTOTP(t *testing.T, e *Env, name, pw string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.Client.AddUser(ctx, apitype.UserRequest{Name: name, Password: pw, Roles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	en, err := e.Client.EnrollTOTP(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	code, err := identity.TOTPCode(en.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Client.ConfirmTOTP(ctx, name, code); err != nil {
		t.Fatal(err)
	}
	return en.Secret
}

// wrongCode returns six digits (the form's pattern) that are the code of
// no time step the platform would accept for a while.
func wrongCode(t *testing.T, secret string) string {
	t.Helper()
	valid := map[string]bool{}
	now := time.Now()
	for d := -3; d <= 3; d++ {
		c, err := identity.TOTPCode(secret, now.Add(time.Duration(d)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		valid[c] = true
	}
	for n := 0; ; n += 111111 {
		if c := fmt.Sprintf("%06d", n%1000000); !valid[c] {
			return c
		}
	}
}

// startBrowser starts a headless Chromium that reaches the platform's app
// hosts at the gateway and accepts exactly the certificate the gateway
// serves for host. The browser lives at most limit and is closed when the
// test ends; the returned context is its tab.
//
// The browser runs in a network namespace of its own (see isolatedNet):
// Chromium watches the machine's addresses and fails the requests in flight
// with ERR_NETWORK_CHANGED whenever one comes or goes, which sandboxes
// starting and stopping (this platform's, or another test's) do all the time.
func startBrowser(t *testing.T, e *Env, exe, host string, limit time.Duration) context.Context {
	t.Helper()
	nsenter := need.Program(t, "nsenter")
	ns := isolatedNet(t, e.HTTPS)
	var out lockedBuffer // what Chromium prints, shown if the test fails
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{nsenter, "--net=" + ns, "--"}, cmd.Args...)
			cmd.Path = nsenter // which execs Chromium, so the process stays the browser
			// As chromedp does by default: the browser dies with the test.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
		chromedp.Headless,
		chromedp.NoSandbox, // the test runs as root, where Chromium's sandbox will not start
		chromedp.UserDataDir(t.TempDir()),
		// App hosts (guarded.test.localhost) are in no DNS: send them all
		// to 127.0.0.1, where isolatedNet relays the gateway's port to the
		// gateway. The URL keeps the gateway's port.
		chromedp.Flag("host-resolver-rules", "MAP *."+e.Domain+" 127.0.0.1"),
		// The platform's CA is in no trust store this browser reads. Rather
		// than turn certificate checks off (--ignore-certificate-errors
		// accepts any certificate for any name, so it would hide a broken
		// chain or a certificate for the wrong host), name the one public key
		// to accept: Chromium then lets through a chain only if it holds a
		// certificate with that SubjectPublicKeyInfo. Chromium honours this
		// switch only together with --user-data-dir, that is in a profile of
		// its own such as this throwaway one, and it touches no trust store
		// of the machine (importing the CA would need certutil and write
		// into root's ~/.pki/nssdb, shared by every profile). The key is
		// the gateway's leaf for host, which leafSPKI first verifies against
		// the platform's CA for that very name, so the browser trusts
		// exactly what the platform issued and nothing else.
		chromedp.Flag("ignore-certificate-errors-spki-list", leafSPKI(t, e, host)),
		chromedp.Flag("no-proxy-server", true), // reach the gateway directly, whatever the environment says
		chromedp.CombinedOutput(&out),
	)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		// Close the browser, and kill it if it does not close in time; the
		// allocator's cancel waits until it has exited.
		cctx, ccancel := context.WithTimeout(bctx, 10*time.Second)
		if err := chromedp.Cancel(cctx); err != nil && ctx.Err() == nil {
			t.Logf("closing chromium: %v", err)
		}
		ccancel()
		bcancel()
		acancel()
		cancel()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	// The first action starts the browser and ties its life to bctx.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", exe, err, out.String())
	}
	return bctx
}

// isolatedNet makes a network namespace that has only a loopback
// interface, and in it a listener on the gateway's address that relays each
// connection, byte for byte, to the gateway; TLS stays end to end. It
// returns the namespace as a path for nsenter. Nothing in it changes while
// the browser runs, and the browser reaches nothing but the gateway. The
// namespace and the relay go away when the test ends.
func isolatedNet(t *testing.T, gateway string) string {
	t.Helper()
	type made struct {
		ns  *os.File
		l   net.Listener
		err error
	}
	ch := make(chan made, 1)
	go func() {
		// The thread moves to the new namespace and stays locked, so Go
		// ends it with this goroutine instead of reusing it. Sockets keep
		// the namespace they were made in.
		runtime.LockOSThread()
		var m made
		m.err = func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("making a network namespace: %w", err)
			}
			if err := loopbackUp(); err != nil {
				return err
			}
			var err error
			if m.ns, err = os.Open("/proc/thread-self/ns/net"); err != nil {
				return fmt.Errorf("opening the network namespace: %w", err)
			}
			if m.l, err = net.Listen("tcp", gateway); err != nil {
				return fmt.Errorf("listening on %s in the browser's namespace: %w", gateway, err)
			}
			return nil
		}()
		ch <- m
	}()
	m := <-ch
	if m.err != nil {
		if m.ns != nil {
			m.ns.Close()
		}
		t.Fatal(m.err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn // closed at the end, should the browser have left any open
	)
	t.Cleanup(func() {
		m.l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		m.ns.Close()
	})
	wg.Go(func() {
		for {
			c, err := m.l.Accept()
			if err != nil {
				return
			}
			d := net.Dialer{Timeout: 5 * time.Second}
			up, err := d.Dial("tcp", gateway)
			if err != nil {
				t.Logf("relaying to the gateway: %v", err)
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(up, c); done <- struct{}{} }()
				go func() { io.Copy(c, up); done <- struct{}{} }()
				<-done // either side closing ends the relay; the defers close both
			})
		}
	})
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), m.ns.Fd())
}

// loopbackUp brings up the loopback interface of the calling thread's
// network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading the flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	return nil
}

// leafSPKI fetches the certificate the gateway serves for host, checks it
// against the platform's CA for that name and returns the base64 SHA-256 of
// its SubjectPublicKeyInfo, the form --ignore-certificate-errors-spki-list
// takes. The gateway keeps the leaf it issued for a host, so the browser
// is served the same one.
func leafSPKI(t *testing.T, e *Env, host string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: e.Roots, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", e.HTTPS)
	if err != nil {
		t.Fatalf("fetching the gateway's certificate for %s: %v", host, err)
	}
	defer conn.Close()
	leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// location is the URL the tab shows.
func location(t *testing.T, ctx context.Context) *url.URL {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("reading the location: %v", err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("parsing the location %q: %v", loc, err)
	}
	return u
}

// showsApp checks that the tab shows hello-go's page, not the sign-in form.
func showsApp(t *testing.T, ctx context.Context, when string) {
	t.Helper()
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("reading the page %s: %v", when, err)
	}
	form, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("login") !== null`))
	if err != nil {
		t.Fatalf("looking for the sign-in form %s: %v", when, err)
	}
	if !strings.Contains(strings.ToLower(body), "hello") || form {
		t.Errorf("page %s: %q (sign-in form: %v), want the app's hello page", when, body, form)
	}
}

// sessionCookie returns the session cookie the browser holds for pageURL,
// or nil.
func sessionCookie(t *testing.T, ctx context.Context, pageURL string) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{pageURL}})
	if err != nil {
		t.Fatalf("reading the browser's cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == "__Host-noops-session" {
			return c
		}
	}
	return nil
}
