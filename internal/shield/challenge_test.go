package shield

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"noops/internal/spec"
)

func TestChallenge(t *testing.T) {
	t.Parallel()
	rule := spec.RateLimit{Name: "c", Limit: 2, Window: spec.Duration(time.Minute), Key: []string{"ip"}, Action: "challenge"}
	p := start(t, options{manifest: spec.Config{RateLimits: []spec.RateLimit{rule}}})

	// A browser keeps the cookie and follows the redirect: served.
	browser := p.client("127.0.0.30")
	browser.Jar, _ = cookiejar.New(nil)
	browser.CheckRedirect = nil
	for i := 0; i < 5; i++ {
		if st, err := get(t, browser, "/page"); err != nil || st != 200 {
			t.Fatalf("browser request %d: %d %v", i+1, st, err)
		}
	}

	// A bot without cookies gets 307s and, at the third, fails.
	bot := p.client("127.0.0.31")
	for i := 0; i < 5; i++ {
		st, err := get(t, bot, "/page")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 200, false: http.StatusTemporaryRedirect}[i < 2]; st != want {
			t.Fatalf("bot request %d: %d, want %d", i+1, st, want)
		}
	}
	failed := p.eventsOf(KindChallengeFailed)
	if len(failed) != 1 || failed[0].Client != "127.0.0.31" {
		t.Fatalf("challenge_failed events %+v, want one for the bot", failed)
	}

	// A cookie made for another address does not pass.
	thief := p.client("127.0.0.32")
	for i := 0; i < 2; i++ {
		get(t, thief, "/page")
	}
	var stolen *http.Cookie
	for _, c := range browser.Jar.Cookies(mustURL("https://app.localhost/")) {
		if c.Name == ChallengeCookie {
			stolen = c
		}
	}
	if stolen == nil {
		t.Fatal("the browser has no challenge cookie")
	}
	req, _ := http.NewRequest("GET", "https://app.localhost/page", nil)
	req.AddCookie(stolen)
	res, err := thief.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("a borrowed cookie: %d, want 307", res.StatusCode)
	}
	if n := len(p.eventsOf(KindChallengeFailed)); n != 2 {
		t.Errorf("%d challenge_failed events, want 2", n)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
