package testenv

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"noops/internal/apitype"
	"noops/internal/observe/trace"
)

// do sends a request to app through the gateway.
func (e *Env) do(t *testing.T, method, app, path, body string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL(app, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, e.URL(app, path), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestOrdersPipeline deploys examples/orders (web publishes
// orders.created from its sandbox; billing, at zero, is woken for it and
// publishes orders.billed; ledger records it) and examples/slack-echo on
// the real platform: one trace ID at every hop, asynchronous invocation
// and Idempotency-Key through the gateway, a poisoned event in the dead
// letters with its error, and a slash command answered.
func TestOrdersPipeline(t *testing.T) {
	e := Start(t, Options{StartTimeout: 30 * time.Second})
	ctx := context.Background()
	for _, a := range []struct{ dir, app string }{
		{"orders/ledger", "ledger"}, {"orders/billing", "billing"}, {"orders/web", "orders"}, {"slack-echo", "slack-echo"},
	} {
		deployOK(t, e, Example(t, a.dir), a.app)
	}

	tp := trace.New()
	var placed struct{ OrderID, EventID, TraceID string }
	t.Run("an order goes through three apps in one trace", func(t *testing.T) {
		resp, body := e.do(t, "POST", "orders", "/orders", `{"item":"apple","quantity":3}`,
			http.Header{"Content-Type": {"application/json"}, "Traceparent": {tp.String()}})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /orders = %d %s", resp.StatusCode, body)
		}
		_ = json.Unmarshal([]byte(body), &struct {
			OrderID *string `json:"order_id"`
			EventID *string `json:"event_id"`
			TraceID *string `json:"trace_id"`
		}{&placed.OrderID, &placed.EventID, &placed.TraceID})
		if placed.OrderID == "" || placed.TraceID != tp.TraceIDString() {
			t.Fatalf("web answered %s: want the trace %s", body, tp.TraceIDString())
		}
		var rec map[string]any
		waitFor(t, "the ledger to record the order", time.Minute, func() bool {
			_, body := e.Get(t, "ledger", "/records")
			var out struct{ Records []map[string]any }
			_ = json.Unmarshal([]byte(body), &out)
			for _, r := range out.Records {
				if r["order_id"] == placed.OrderID {
					rec = r
					return true
				}
			}
			return false
		})
		if rec["trace_id"] != tp.TraceIDString() || rec["amount_cents"] == float64(0) {
			t.Fatalf("ledger record %v: want trace %s at the third hop", rec, tp.TraceIDString())
		}
	})

	t.Run("a poisoned event lands in the dead letters with its error", func(t *testing.T) {
		res, err := e.Client.Publish(ctx, "orders.created", apitype.PublishRequest{Data: "not json", ContentType: "application/json"})
		if err != nil {
			t.Fatal(err)
		}
		var dls []apitype.DeadLetter
		waitFor(t, "the dead letter", time.Minute, func() bool {
			dls, err = e.Client.DeadLetters(ctx, "billing")
			return err == nil && len(dls) == 1
		})
		d := dls[0]
		if d.Event.ID != res.ID || d.Attempts != 1 || !strings.Contains(d.Error, "HTTP 400") || d.Origin != "orders.created" {
			t.Fatalf("dead letter %+v: want event %s refused once with its 400", d, res.ID)
		}
	})

	t.Run("asynchronous invocation and idempotency keys through the gateway", func(t *testing.T) {
		resp, body := e.do(t, "POST", "orders", "/orders", `{"item":"pear","quantity":1}`,
			http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, "/.noops/invocations/") {
			t.Fatalf("async POST = %d %v %s", resp.StatusCode, resp.Header, body)
		}
		var inv apitype.Invocation
		waitFor(t, "the invocation to finish", time.Minute, func() bool {
			_, b := e.do(t, "GET", "orders", loc, "", nil)
			_ = json.Unmarshal([]byte(b), &inv)
			return inv.Status == "succeeded" || inv.Status == "failed"
		})
		if inv.Status != "succeeded" || inv.Response.Status != http.StatusAccepted || !strings.Contains(string(inv.Response.Body), "order_id") {
			t.Fatalf("invocation %+v", inv)
		}

		key := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"order-42"}}
		r1, b1 := e.do(t, "POST", "orders", "/orders", `{"item":"fig","quantity":2}`, key)
		r2, b2 := e.do(t, "POST", "orders", "/orders", `{"item":"fig","quantity":2}`, key)
		if r1.StatusCode != http.StatusAccepted || b1 != b2 || r2.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("the same key twice: %s %q / %s %q %v", r1.Status, b1, r2.Status, b2, r2.Header)
		}
		if r3, b3 := e.do(t, "POST", "orders", "/orders", `{"item":"fig","quantity":9}`, key); r3.StatusCode != http.StatusConflict {
			t.Fatalf("the same key, another order: %s %s", r3.Status, b3)
		}
	})

	t.Run("slack-echo answers a slash command", func(t *testing.T) {
		form := url.Values{"user_name": {"ada"}, "text": {"hello <world>"}, "command": {"/echo"}}
		resp, body := e.do(t, "POST", "slack-echo", "/", form.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		var out struct{ ResponseType, Text string }
		_ = json.Unmarshal([]byte(body), &struct {
			R *string `json:"response_type"`
			T *string `json:"text"`
		}{&out.ResponseType, &out.Text})
		if resp.StatusCode != 200 || out.ResponseType != "in_channel" || out.Text != "ada says: hello &lt;world&gt;" {
			t.Fatalf("slash command: %d %s", resp.StatusCode, body)
		}
	})
}
