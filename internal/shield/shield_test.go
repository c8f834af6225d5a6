package shield

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestSQLiAndXSSBlockedBenignPasses(t *testing.T) {
	p := start(t, options{})
	c := p.client("127.0.0.1")
	do := func(method, path, ctype, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://app.localhost"+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Accept", "*/*")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	for _, tc := range []struct {
		name, method, path, ctype, body string
		rule                            int
	}{
		{"sqli", "POST", "/login", "application/x-www-form-urlencoded", "user=admin' OR 1=1--&pass=x", 942100},
		{"xss", "GET", "/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "", "", 941100},
	} {
		res, body := do(tc.method, tc.path, tc.ctype, tc.body)
		if res.StatusCode != 403 {
			t.Fatalf("%s: status %d, want 403", tc.name, res.StatusCode)
		}
		if !strings.Contains(body, "web application firewall") {
			t.Errorf("%s: page %q does not say why", tc.name, body)
		}
		ev := p.eventFor(res.Header.Get("X-Request-Id"))
		if ev == nil || ev.Kind != KindWAFBlock || !slices.Contains(ev.WAF.IDs(), tc.rule) {
			t.Errorf("%s: event %+v, want a waf_block naming %d", tc.name, ev, tc.rule)
		}
	}
	res, body := do("POST", "/api/orders", "application/json", `{"item":"book","qty":2,"note":"gift wrap, please"}`)
	if res.StatusCode != 200 || body != "ok" {
		t.Errorf("benign JSON: %d %q, want 200 ok", res.StatusCode, body)
	}
	if got := p.shield.WAFHits("127.0.0.1"); got != 2 {
		t.Errorf("WAFHits = %d, want 2", got)
	}
}
