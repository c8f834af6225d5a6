package gateway

import (
	"bytes"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

const debugLevel = slog.LevelDebug

// errorPage is what the gateway answers itself when it cannot proxy.
type errorPage struct {
	Status    int
	Title     string // what is wrong, one line
	Detail    string // what it means and what to do
	RequestID string
}

func notFoundPage(host, domain, id string) errorPage {
	if host == "" {
		host = "(no host)"
	}
	return errorPage{Status: http.StatusNotFound, RequestID: id,
		Title:  fmt.Sprintf("No app is deployed at %s", host),
		Detail: fmt.Sprintf("Apps are served at https://<app>.%s. Check the address, or deploy an app with: noops deploy --app <app>", domain)}
}

func unavailablePage(app, reason, id string) errorPage {
	if reason == "" {
		reason = "no instance of the app is ready"
	}
	return errorPage{Status: http.StatusServiceUnavailable, RequestID: id,
		Title:  fmt.Sprintf("The app %s is not available right now", app),
		Detail: fmt.Sprintf("Reason: %s. Try again in a moment; if it lasts, see: noops ps %s and noops logs %s", reason, app, app)}
}

func badGatewayPage(app, id string) errorPage {
	return errorPage{Status: http.StatusBadGateway, RequestID: id,
		Title:  fmt.Sprintf("The app %s did not answer", app),
		Detail: fmt.Sprintf("The request reached the platform but the app failed to respond. Try again; if it lasts, see: noops logs %s", app)}
}

func refusedPage(status int, why, id string) errorPage {
	return errorPage{Status: status, RequestID: id, Title: http.StatusText(status),
		Detail: "The platform refused the request: " + why + "."}
}

// ShieldPage writes the gateway's page for a request the Shield refuses:
// status is 403 (a WAF block), 429 (a rate rule) or another refusal; why
// says what to do, id is the request ID (X-Request-Id).
func (g *Gateway) ShieldPage(w http.ResponseWriter, r *http.Request, status int, why string) {
	g.page(w, r, refusedPage(status, why, w.Header().Get("X-Request-Id")))
}

var pageHTML = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Status}} {{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}code{background:#f3f3f3;padding:.1em .3em}small{color:#777}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Detail}}</p>
<p><small>HTTP {{.Status}} · request ID <code>{{.RequestID}}</code></small></p></body></html>
`))

// page writes p as HTML when the client accepts it, else as plain text.
func (g *Gateway) page(w http.ResponseWriter, r *http.Request, p errorPage) {
	h := w.Header()
	h.Set("X-Request-Id", p.RequestID)
	h["Strict-Transport-Security"] = hstsHeader[:1:1]
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if p.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	var body bytes.Buffer
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "text/html; charset=utf-8")
		if err := pageHTML.Execute(&body, p); err != nil {
			g.log.Error("rendering error page", "err", err)
		}
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(&body, "%s\n%s\nrequest ID: %s\n", p.Title, p.Detail, p.RequestID)
	}
	h.Set("Content-Length", fmt.Sprint(body.Len()))
	w.WriteHeader(p.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body.Bytes())
	}
}

// redirect answers every plain-HTTP request with a permanent redirect to
// the same host and path over HTTPS.
// TODO(acme): serve /.well-known/acme-challenge/ here once ACME lands.
func (g *Gateway) redirect(w http.ResponseWriter, r *http.Request) {
	countRequest(r)
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" || strings.ContainsAny(host, "/\\@ ") {
		http.Error(w, "a Host header is required: use https://<app>."+g.cfg.Domain+"/", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	port := g.httpsPort
	g.mu.Unlock()
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]" // IPv6 literal
	}
	w.Header().Set("Location", "https://"+host+port+r.URL.RequestURI())
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusPermanentRedirect)
}
