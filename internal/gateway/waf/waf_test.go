package waf

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"noops/internal/errkind"
)

var (
	engineOnce sync.Once
	engine     *Engine
	engineErr  error
)

// crs compiles the CRS once for the package's tests.
func crs(t testing.TB) *Engine {
	engineOnce.Do(func() { engine, engineErr = New(Config{}) })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

func settings(t testing.TB, s Settings) Settings {
	s, err := s.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inspect runs a request through the engine and returns whether it was
// refused, the event and the body the app would read.
func inspect(t *testing.T, s Settings, r *http.Request) (bool, *Event, string) {
	t.Helper()
	tx := crs(t).Begin(r, settings(t, s), "test")
	refuse, err := tx.Request(r)
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	return refuse, tx.End(), string(body)
}

func form(target, body string) *http.Request {
	r := httptest.NewRequest("POST", target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("User-Agent", "noops-test")
	r.Header.Set("Accept", "*/*")
	return r
}

func TestSQLiAndXSSBlockedAtPL1(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *http.Request
		want int
	}{
		{"sqli in form", form("https://a.localhost/login", "user=admin' OR 1=1--&pass=x"), 942100},
		{"xss in query", httptest.NewRequest("GET", "https://a.localhost/search?q=<script>alert(1)</script>", nil), 941100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Header.Set("User-Agent", "noops-test")
			tc.r.Header.Set("Accept", "*/*")
			refuse, ev, _ := inspect(t, Settings{Mode: Block}, tc.r)
			if !refuse || ev == nil || !ev.Blocked || ev.Status != 403 {
				t.Fatalf("refuse=%v event=%+v, want a 403 block", refuse, ev)
			}
			if !slices.Contains(ev.IDs(), tc.want) || !slices.Contains(ev.IDs(), 949110) {
				t.Errorf("rules %v, want %d and 949110", ev.IDs(), tc.want)
			}
			if ev.Inbound < 5 {
				t.Errorf("inbound score %d, want >= 5", ev.Inbound)
			}
		})
	}
}

func TestBenignJSONPasses(t *testing.T) {
	r := httptest.NewRequest("POST", "https://a.localhost/api/orders", strings.NewReader(`{"item":"book","qty":2,"note":"gift wrap, please"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "noops-test")
	r.Header.Set("Accept", "application/json")
	refuse, ev, body := inspect(t, Settings{Mode: Block}, r)
	if refuse || ev != nil {
		t.Fatalf("refuse=%v event=%+v, want a clean pass", refuse, ev)
	}
	if !strings.Contains(body, "gift wrap") {
		t.Errorf("the app would read %q, want the whole body", body)
	}
}

func TestDetectReportsWithoutRefusing(t *testing.T) {
	refuse, ev, _ := inspect(t, Settings{Mode: Detect}, form("https://a.localhost/", "q=1' UNION SELECT password FROM users--"))
	if refuse || ev == nil || ev.Blocked {
		t.Fatalf("refuse=%v event=%+v, want a report without a block", refuse, ev)
	}
	if !slices.Contains(ev.IDs(), 949110) {
		t.Errorf("rules %v, want 949110 (the block it would have done)", ev.IDs())
	}
}

func TestParanoiaPerTransaction(t *testing.T) {
	// 920273 (a character outside a strict set) is a PL4 rule.
	r := func() *http.Request { return form("https://a.localhost/", "a=hello~world") }
	_, ev1, _ := inspect(t, Settings{Mode: Detect, Paranoia: 1}, r())
	_, ev4, _ := inspect(t, Settings{Mode: Detect, Paranoia: 4}, r())
	if ev1 != nil && slices.Contains(ev1.IDs(), 920273) {
		t.Errorf("PL1 matched 920273: %v", ev1.IDs())
	}
	if ev4 == nil || !slices.Contains(ev4.IDs(), 920273) {
		t.Errorf("PL4 did not match 920273: %+v", ev4)
	}
}

func TestBodyCapAndBinarySkip(t *testing.T) {
	// The attack past the cap is not seen, and the app still gets it all.
	body := "a=" + strings.Repeat("x", 200) + "&b=1' OR 1=1--"
	refuse, ev, got := inspect(t, Settings{Mode: Block, BodyLimit: 100}, form("https://a.localhost/", body))
	if refuse || got != body {
		t.Fatalf("refuse=%v body intact=%v", refuse, got == body)
	}
	_ = ev
	r := httptest.NewRequest("POST", "https://a.localhost/upload", strings.NewReader("1' OR 1=1--"))
	r.Header.Set("Content-Type", "image/png")
	r.Header.Set("User-Agent", "noops-test")
	r.Header.Set("Accept", "*/*")
	_, ev, _ = inspect(t, Settings{Mode: Block}, r)
	if ev == nil || ev.Skipped != "binary content type image/png" || slices.Contains(ev.IDs(), 942100) {
		t.Errorf("an image body was inspected: %+v", ev)
	}
}

func TestCompressedBodyInspectedAndBombRefused(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	r := httptest.NewRequest("POST", "https://a.localhost/", bytes.NewReader(gz("q=1' UNION SELECT password FROM users--")))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Content-Encoding", "gzip")
	r.Header.Set("User-Agent", "noops-test")
	r.Header.Set("Accept", "*/*")
	if refuse, _, _ := inspect(t, Settings{Mode: Block}, r); !refuse {
		t.Error("an attack in a gzip body passed")
	}
	bomb := httptest.NewRequest("POST", "https://a.localhost/", bytes.NewReader(gz(strings.Repeat("a", 10<<20))))
	bomb.Header.Set("Content-Encoding", "gzip")
	tx := crs(t).Begin(bomb, settings(t, Settings{Mode: Block}), "bomb")
	if _, err := tx.Request(bomb); !errors.Is(err, ErrBomb) {
		t.Errorf("bomb: err = %v, want ErrBomb", err)
	}
	tx.End()
}

func TestResponseInspection(t *testing.T) {
	leak := "<html>Warning: mysql_fetch_array() expects parameter 1 to be resource, boolean given in /var/www/x.php on line 3</html>"
	r := httptest.NewRequest("GET", "https://a.localhost/item?id=1", nil)
	r.Header.Set("User-Agent", "noops-test")
	r.Header.Set("Accept", "*/*")
	s := settings(t, Settings{Mode: Block, Responses: true})
	tx := crs(t).Begin(r, s, "resp")
	if refuse, err := tx.Request(r); refuse || err != nil {
		t.Fatalf("request: %v %v", refuse, err)
	}
	rec := httptest.NewRecorder()
	w := tx.Response(rec, r)
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(200)
	io.WriteString(w, leak)
	tx.Finish()
	ev := tx.End()
	if rec.Code != 403 || rec.Body.Len() != 0 {
		t.Errorf("client got %d %q, want an empty 403", rec.Code, rec.Body.String())
	}
	if ev == nil || !ev.Blocked || ev.Outbound == 0 {
		t.Errorf("event %+v, want an outbound block", ev)
	}
}

func TestSettingsNormalize(t *testing.T) {
	for _, s := range []Settings{{Mode: "on"}, {Paranoia: 5}, {BodyLimit: MaxBodyLimit + 1}} {
		if _, err := s.Normalize(); !errkind.Is(err, errkind.Invalid) {
			t.Errorf("%+v: err = %v, want Invalid", s, err)
		}
	}
	s, err := Settings{}.Normalize()
	if err != nil || s.Mode != Block || s.Paranoia != 1 || s.BodyLimit != DefaultBodyLimit {
		t.Errorf("defaults: %+v %v", s, err)
	}
}

func TestBadDirectiveFailsAtLoadWithLine(t *testing.T) {
	text := "# local rules\nSecRule ARGS \"@rx x\" \\\n  \"id:10001,phase:2,deny\"\n\nSecRule ARGS \"@bogus\" \"id:10002\"\n"
	_, err := New(Config{Directives: text, DirectivesName: "/etc/noops/waf.conf"})
	if err == nil || !errkind.Is(err, errkind.Invalid) {
		t.Fatalf("err = %v, want Invalid", err)
	}
	var le *LoadError
	if !errors.As(err, &le) || le.Line != 5 || !strings.Contains(err.Error(), "/etc/noops/waf.conf:5: ") || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("err = %v, want it at /etc/noops/waf.conf:5", err)
	}
}
