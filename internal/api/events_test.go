package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"noops/internal/api"
	"noops/internal/api/apitest"
	"noops/internal/apitype"
	"noops/internal/events"
	"noops/internal/store/sqlite"
)

// newEventsAPI is the API over a real bus on an embedded server; the app
// "fn" is an httptest server that echoes its body.
func newEventsAPI(t *testing.T) (*apiEnv, *events.Bus) {
	t.Helper()
	emb, err := events.StartEmbedded(events.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Noops-Invoked-By"))
		w.Write(append([]byte("echo: "), b...))
	}))
	bus, err := events.Open(context.Background(), nc, events.Config{Target: events.HTTPTarget{URL: func(string) string { return fn.URL }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(context.Background()); nc.Close(); emb.Shutdown(); fn.Close() })
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &apiEnv{plane: apitest.NewPlane(testNow), logs: &apitest.Logs{Lines: map[string][]string{}}, audit: db, log: &syncBuffer{}}
	e.h = api.Handler(api.Config{Plane: e.plane, Audit: db, Logs: e.logs, Bus: bus,
		Logger: slog.New(slog.NewTextHandler(e.log, nil)), Now: func() time.Time { return testNow }})
	return e, bus
}

func TestEventRoutes(t *testing.T) {
	e, bus := newEventsAPI(t)
	w := e.do("POST", "/v1/topics/orders.created/events", `{"data":"{\"id\":1}","content_type":"application/json","partition_key":"o1"}`)
	var pub apitype.PublishResult
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &pub) != nil || pub.Topic != "orders.created" || len(pub.ID) != 32 || pub.TraceParent == "" {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	if w := e.do("POST", "/v1/topics/bad%20topic/events", `{"data":"x"}`); w.Code != 400 || !strings.Contains(wireError(t, w).Message, "forbidden character") {
		t.Fatalf("bad topic: %d %s", w.Code, w.Body)
	}
	found := false
	for _, a := range e.auditLog(t) {
		found = found || strings.Contains(a.Detail, "publish "+pub.ID+" to orders.created")
	}
	if !found {
		t.Errorf("the publish is not audited: %+v", e.auditLog(t))
	}

	w = e.do("POST", "/v1/apps/fn/invoke", `{"method":"PUT","path":"/x","data":"hi"}`)
	var res apitype.InvokeResult
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &res) != nil || res.Status != 200 || string(res.Body) != "echo: hi" ||
		!strings.HasPrefix(res.Header.Get("X-Seen"), "PUT /x ") {
		t.Fatalf("sync invoke: %d %s", w.Code, w.Body)
	}
	w = e.do("POST", "/v1/apps/fn/invoke", `{"data":"later","async":true}`)
	if w.Code != http.StatusAccepted || json.Unmarshal(w.Body.Bytes(), &res) != nil || res.Invocation == nil {
		t.Fatalf("async invoke: %d %s", w.Code, w.Body)
	}
	id := res.Invocation.ID
	if err := bus.SetFunction(context.Background(), events.Function{App: "fn"}); err != nil {
		t.Fatal(err)
	}
	var inv apitype.Invocation
	deadline := time.Now().Add(10 * time.Second)
	for inv.Status != "succeeded" && time.Now().Before(deadline) {
		_ = json.Unmarshal(e.do("GET", "/v1/invocations/"+id, "").Body.Bytes(), &inv)
		time.Sleep(20 * time.Millisecond)
	}
	if inv.Status != "succeeded" || string(inv.Response.Body) != "echo: later" {
		t.Fatalf("invocation %+v", inv)
	}
	if w := e.do("POST", "/v1/invocations/"+id+"/cancel", "{}"); w.Code != http.StatusConflict {
		t.Fatalf("cancel of a finished invocation: %d %s", w.Code, w.Body)
	}
	if w := e.do("GET", "/v1/invocations/nope", ""); w.Code != 404 {
		t.Fatalf("unknown invocation: %d", w.Code)
	}
	if w := e.do("GET", "/v1/apps/fn/dlq", ""); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Fatalf("empty dead letters: %d %s", w.Code, w.Body)
	}
	if w := e.do("GET", "/v1/apps/fn/dlq/0", ""); w.Code != 400 {
		t.Fatalf("dead letter 0: %d", w.Code)
	}
	if w := e.do("GET", "/v1/apps/fn/dlq/7", ""); w.Code != 404 {
		t.Fatalf("missing dead letter: %d", w.Code)
	}
	if w := e.do("POST", "/v1/apps/fn/dlq/replay", `{}`); w.Code != 400 {
		t.Fatalf("replay of nothing: %d", w.Code)
	}
	if w := e.do("POST", "/v1/apps/fn/dlq/replay", `{"all":true}`); w.Code != 200 || !strings.Contains(w.Body.String(), `"replayed": 0`) {
		t.Fatalf("replay all of none: %d %s", w.Code, w.Body)
	}
}
