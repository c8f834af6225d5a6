package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testNow = time.Unix(1_700_000_000, 0)

func form(text string) string {
	return url.Values{
		"token": {"x"}, "team_id": {"T1"}, "channel_id": {"C1"}, "user_id": {"U1"},
		"user_name": {"ada"}, "command": {"/echo"}, "text": {text},
		"response_url": {"https://hooks.slack.com/commands/1"},
	}.Encode()
}

// do sends a request through the app's mux and returns the recorder.
func do(t *testing.T, h *handler, method, path, ctype, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	newMux(h).ServeHTTP(w, r)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) reply {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, body %q", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var out reply
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return out
}

const formType = "application/x-www-form-urlencoded"

func TestEcho(t *testing.T) {
	h := &handler{now: time.Now}
	got := decode(t, do(t, h, "POST", "/", formType, form("hello world"), nil))
	if want := (reply{"in_channel", "ada says: hello world"}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestEmptyTextShowsUsage(t *testing.T) {
	h := &handler{now: time.Now}
	got := decode(t, do(t, h, "POST", "/", formType+"; charset=utf-8", form("   "), nil))
	if want := (reply{"ephemeral", "Usage: /echo TEXT"}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestEscapesSlackMarkup(t *testing.T) {
	h := &handler{now: time.Now}
	got := decode(t, do(t, h, "POST", "/", formType, form("<!channel> & co"), nil))
	if want := "ada says: &lt;!channel&gt; &amp; co"; got.Text != want {
		t.Fatalf("text %q, want %q", got.Text, want)
	}
}

func TestRefusals(t *testing.T) {
	h := &handler{now: time.Now}
	for _, tc := range []struct {
		name, method, ctype, body string
		want                      int
	}{
		{"GET shows what the app is", "GET", "", "", http.StatusOK},
		{"PUT", "PUT", formType, form("x"), http.StatusMethodNotAllowed},
		{"JSON", "POST", "application/json", `{"text":"x"}`, http.StatusUnsupportedMediaType},
		{"no type", "POST", "", form("x"), http.StatusUnsupportedMediaType},
		{"too big", "POST", formType, form(strings.Repeat("a", maxBody)), http.StatusRequestEntityTooLarge},
		{"bad form", "POST", formType, "text=%zz", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := do(t, h, tc.method, "/", tc.ctype, tc.body, nil); w.Code != tc.want {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tc.want, w.Body)
			}
		})
	}
}

func TestSignature(t *testing.T) {
	secret := []byte("8f742231b10e8888abcd99yyyzzz85a5")
	h := &handler{secret: secret, now: func() time.Time { return testNow }}
	body := form("signed")
	ts := strconv.FormatInt(testNow.Unix(), 10)
	old := strconv.FormatInt(testNow.Add(-6*time.Minute).Unix(), 10)
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"good", map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, []byte(body))}, http.StatusOK},
		{"missing", nil, http.StatusUnauthorized},
		{"wrong secret", map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign([]byte("other"), ts, []byte(body))}, http.StatusUnauthorized},
		{"other body", map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, []byte(form("forged")))}, http.StatusUnauthorized},
		{"too old", map[string]string{"X-Slack-Request-Timestamp": old, "X-Slack-Signature": sign(secret, old, []byte(body))}, http.StatusUnauthorized},
		{"bad timestamp", map[string]string{"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": sign(secret, "soon", []byte(body))}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := do(t, h, "POST", "/", formType, body, tc.hdr); w.Code != tc.want {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tc.want, w.Body)
			}
		})
	}
}

// TestSlackDocExample checks sign against the example in Slack's
// "Verifying requests from Slack" guide.
func TestSlackDocExample(t *testing.T) {
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	got := sign([]byte("8f742231b10e8888abcd99yyyzzz85a5"), "1531420618", []byte(body))
	if want := "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"; got != want {
		t.Fatalf("sign = %s, want %s", got, want)
	}
}

func TestHealthz(t *testing.T) {
	w := do(t, &handler{now: time.Now}, "GET", "/healthz", "", "", nil)
	if w.Code != http.StatusOK || w.Body.String() != "ok\n" {
		t.Fatalf("status %d body %q", w.Code, w.Body)
	}
}
