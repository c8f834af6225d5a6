package shield

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"noops/internal/gateway"
	"noops/internal/gateway/ban"
	"noops/internal/notify"
	"noops/internal/spec"
	"noops/internal/store"
	"noops/internal/store/sqlite"
)

func get(t *testing.T, c *http.Client, path string) (int, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://app.localhost"+path, nil)
	req.Header.Set("Accept", "*/*")
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// One client sends 100 requests in 10 s against a limit of 50 per 60 s:
// it is refused before request 60, banned, and served again once the ban
// is over. Another client is served throughout.
func TestRateRuleBlocksBansAndUnbans(t *testing.T) {
	t.Parallel()
	rule := spec.RateLimit{Name: "api", Limit: 50, Window: spec.Duration(time.Minute), Key: []string{"ip"}, Action: "block", Ban: spec.Duration(4 * time.Second)}
	p := start(t, options{manifest: spec.Config{RateLimits: []spec.RateLimit{rule}}})
	c, other := p.client("127.0.0.2"), p.client("127.0.0.3")
	firstRefused := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 1; i <= 100; i++ {
		<-tick.C
		status, err := get(t, c, "/")
		if (err != nil || status != 200) && firstRefused == 0 {
			firstRefused = i
			if status != 0 && status != http.StatusTooManyRequests {
				t.Fatalf("request %d: status %d, want 429", i, status)
			}
			// Banned now: refused at the door, before TLS.
			if _, err := p.dialTLS("127.0.0.2"); err == nil {
				t.Error("a banned client completed a TLS handshake")
			}
		}
		if i%20 == 0 {
			if st, err := get(t, other, "/"); err != nil || st != 200 {
				t.Fatalf("the other client got %d %v while the first was limited", st, err)
			}
		}
	}
	if firstRefused == 0 || firstRefused >= 60 {
		t.Fatalf("first refusal at request %d, want before 60", firstRefused)
	}
	t.Logf("first refused: request %d", firstRefused)
	bans := p.eventsOf(KindBan)
	if len(bans) != 1 || bans[0].Ban.Trigger != "rate:api" || bans[0].Ban.Prefix != "127.0.0.2/32" {
		t.Fatalf("ban events %+v, want one rate:api ban of 127.0.0.2", bans)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := get(t, p.client("127.0.0.2"), "/")
		if err == nil && st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the ban: %d %v", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(p.eventsOf(KindUnban)) != 1 {
		t.Errorf("unban events %+v, want one", p.eventsOf(KindUnban))
	}
}

// A slowloris client (headers trickled) is dropped after the header
// timeout while another client is served.
func TestSlowlorisDroppedOthersServed(t *testing.T) {
	t.Parallel()
	p := start(t, options{limits: gateway.Limits{HeaderTimeout: time.Second}})
	conn, err := p.dialTLS("127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: app.localhost\r\n")
	closed := make(chan time.Duration, 1)
	began := time.Now()
	go func() {
		for i := 0; i < 50; i++ {
			if _, err := fmt.Fprintf(conn, "X-Slow-%d: a\r\n", i); err != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		closed <- time.Since(began)
	}()
	if st, err := get(t, p.client("127.0.0.5"), "/"); err != nil || st != 200 {
		t.Fatalf("another client: %d %v", st, err)
	}
	// The server answers 408 or closes; either way the trickle ends.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	rd := bufio.NewReader(conn)
	line, _ := rd.ReadString('\n')
	if line != "" && !strings.Contains(line, "408") {
		t.Errorf("slow client got %q", line)
	}
	select {
	case d := <-closed:
		if d > 5*time.Second {
			t.Errorf("slow client held its connection for %s", d)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the slow client was never dropped")
	}
}

// A ban is in the store: a new ban list over the same store refuses the
// client at once.
func TestBanSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() *sqlite.DB {
		db, err := sqlite.Open(filepath.Join(dir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	p := start(t, options{banStore: storeBans{db}})
	if _, err := p.bans.Add(context.Background(), netip.MustParsePrefix("127.0.0.6/32"), time.Hour, "test", "admin"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db2 := open()
	t.Cleanup(func() { db2.Close() })
	p2 := start(t, options{banStore: storeBans{db2}})
	if _, err := p2.dialTLS("127.0.0.6"); err == nil {
		t.Fatal("a banned client connected to the restarted gateway")
	}
	if st, err := get(t, p2.client("127.0.0.7"), "/"); err != nil || st != 200 {
		t.Errorf("another client: %d %v", st, err)
	}
}

// A webhook receiver gets one event per ban, although the ban's client
// keeps offending and the first deliveries fail.
func TestWebhookGetsOneEventPerBan(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []map[string]any
	fails := 2
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		got = append(got, m)
	}))
	defer hook.Close()
	n, err := notify.New(notify.Config{Sinks: []notify.Sink{notify.Webhook(hook.URL, nil)}, Backoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(context.Background())
	defer n.Stop(context.Background())
	p := start(t, options{notifier: n, rules: map[ban.Trigger]ban.Rule{ban.WAF: {Count: 2, Window: time.Minute, Ban: time.Hour}}})
	c := p.client("127.0.0.8")
	for i := 0; i < 6; i++ {
		get(t, c, "/?q=%3Cscript%3Ealert(1)%3C/script%3E") // refused once banned
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		var bans int
		for _, m := range got {
			if m["kind"] == "ban" {
				bans++
			}
		}
		mu.Unlock()
		if bans == 1 {
			break
		}
		if bans > 1 || time.Now().After(deadline) {
			t.Fatalf("webhook got %d ban events: %v", bans, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, m := range got {
		if m["kind"] == "ban" && m["key"] != "127.0.0.8/32" {
			t.Errorf("ban event %v, want key 127.0.0.8/32", m)
		}
	}
}

// storeBans adapts the sqlite store to the ban list.
type storeBans struct{ s *sqlite.DB }

func (b storeBans) PutBan(ctx context.Context, x ban.Ban) error { return b.s.PutBan(ctx, store.Ban(x)) }
func (b storeBans) DeleteBan(ctx context.Context, p string) error {
	return b.s.DeleteBan(ctx, p)
}
func (b storeBans) ListBans(ctx context.Context) ([]ban.Ban, error) {
	l, err := b.s.ListBans(ctx)
	out := make([]ban.Ban, len(l))
	for i, x := range l {
		out[i] = ban.Ban(x)
	}
	return out, err
}

// A new ban closes the client's open keep-alive connections at once.
func TestBanClosesOpenConnections(t *testing.T) {
	t.Parallel()
	p := start(t, options{})
	conn, err := p.dialTLS("127.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: app.localhost\r\nAccept: */*\r\nUser-Agent: test\r\n\r\n")
	res, err := http.ReadResponse(rd, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("first request: %v %v", res, err)
	}
	io.Copy(io.Discard, res.Body)
	if n := p.gw.Conns(netip.MustParseAddr("127.0.0.9")); n != 1 {
		t.Fatalf("%d open connections from the client, want 1", n)
	}
	if _, err := p.bans.Add(context.Background(), netip.MustParsePrefix("127.0.0.8/29"), time.Hour, "test", "admin"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rd.ReadByte(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the banned client's connection is still open: %v (conns %d, banned %v)", err, p.gw.Conns(netip.MustParseAddr("127.0.0.9")), p.eventsOf(KindBan))
	}
	if st, err := get(t, p.client("127.0.0.17"), "/"); err != nil || st != 200 {
		t.Errorf("a client outside the banned range: %d %v", st, err)
	}
}

// Failed sign-ins (the identity service's OnFailure) ban the client.
func TestFailedLoginsBan(t *testing.T) {
	t.Parallel()
	p := start(t, options{rules: map[ban.Trigger]ban.Rule{ban.Login: {Count: 3, Window: time.Minute, Ban: time.Minute}}})
	for i := 0; i < 3; i++ {
		p.shield.LoginFailed("127.0.0.40", "alice", "wrong password")
	}
	p.shield.LoginFailed("local", "root", "wrong password") // the admin socket: no address, ignored
	bans := p.eventsOf(KindBan)
	if len(bans) != 1 || bans[0].Ban.Trigger != "login" || bans[0].Ban.Prefix != "127.0.0.40/32" {
		t.Fatalf("bans %+v, want one login ban of 127.0.0.40", bans)
	}
	if _, err := p.dialTLS("127.0.0.40"); err == nil {
		t.Error("the banned client connected")
	}
}
