// Command slack-echo is the classic first serverless exercise: a Slack
// slash-command webhook. Slack POSTs the command as a form to /, and the
// app answers in the channel with what the user typed.
//
// With SLACK_SIGNING_SECRET set, every request must carry Slack's
// signature (X-Slack-Signature over X-Slack-Request-Timestamp and the raw
// body) and a timestamp less than 5 minutes old; without it anyone who
// knows the URL can call the app, which is only fit for trying it out.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	maxBody = 64 << 10        // Slack's forms are far smaller
	maxSkew = 5 * time.Minute // how old (or early) a signed request may be
)

// handler answers slash commands; secret is Slack's signing secret ("" to
// skip the check) and now the clock the timestamps are checked against.
type handler struct {
	secret []byte
	now    func() time.Time
}

// reply is the JSON Slack shows: in_channel for everyone, ephemeral for
// the caller only.
type reply struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "slack-echo: point a Slack slash command's Request URL here; it POSTs the command as a form")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		http.Error(w, "expected an application/x-www-form-urlencoded body", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(h.secret) > 0 {
		if err := h.verify(r.Header, body); err != nil {
			log.Printf("slack-echo: refused: %v", err)
			http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	if form.Get("ssl_check") == "1" { // Slack checking the certificate
		w.WriteHeader(http.StatusOK)
		return
	}
	text := strings.TrimSpace(form.Get("text"))
	out := reply{ResponseType: "ephemeral", Text: "Usage: /echo TEXT"}
	if text != "" {
		out = reply{ResponseType: "in_channel", Text: escape(form.Get("user_name")) + " says: " + escape(text)}
	}
	log.Printf("slack-echo: %s %q from %s in %s/%s", form.Get("command"), text, form.Get("user_id"), form.Get("team_id"), form.Get("channel_id"))
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out)
}

// verify checks Slack's v0 signature: hex HMAC-SHA256 of
// "v0:<timestamp>:<body>" under the signing secret.
func (h *handler) verify(hdr http.Header, body []byte) error {
	ts := hdr.Get("X-Slack-Request-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("missing or malformed X-Slack-Request-Timestamp")
	}
	if skew := h.now().Sub(time.Unix(sec, 0)); skew > maxSkew || skew < -maxSkew {
		return fmt.Errorf("timestamp %s is more than %s away (replay?)", ts, maxSkew)
	}
	got := hdr.Get("X-Slack-Signature")
	if !hmac.Equal([]byte(got), []byte(sign(h.secret, ts, body))) {
		return errors.New("X-Slack-Signature does not match")
	}
	return nil
}

// sign returns the X-Slack-Signature value for a timestamp and body.
func sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "v0:%s:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// escape keeps the user's text from turning into Slack markup such as
// <!channel> mentions: Slack wants &, < and > escaped in message text.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

func newMux(h *handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/{$}", h)
	return mux
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	h := &handler{secret: []byte(os.Getenv("SLACK_SIGNING_SECRET")), now: time.Now}
	if len(h.secret) == 0 {
		log.Printf("slack-echo: SLACK_SIGNING_SECRET is not set: accepting unsigned requests (set it in production)")
	}
	srv := &http.Server{Addr: ":" + port, Handler: newMux(h), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("slack-echo: listening on :%s", port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	log.Printf("slack-echo: stopped")
}
