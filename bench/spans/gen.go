package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// services are the exporters: one per request, as an SDK exports its own
// process's spans.
var services = []string{"frontend", "cart", "checkout", "payments"}

var (
	routes     = []string{"/api/cart/{id}", "/api/products/{sku}", "/api/checkout", "/api/orders/{id}", "/healthz"}
	statements = []string{
		"SELECT id, sku, qty, price_cents FROM cart_items WHERE cart_id = $1 ORDER BY added_at",
		"UPDATE carts SET updated_at = now(), total_cents = $2 WHERE id = $1",
		"INSERT INTO orders (id, customer_id, total_cents, status) VALUES ($1, $2, $3, 'new')",
		"SELECT p.sku, p.name, p.price_cents, s.qty FROM products p JOIN stock s ON s.sku = p.sku WHERE p.sku = ANY($1)",
	}
	agents = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"okhttp/4.12.0",
	}
)

func kvs(kv ...any) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		var v commonpb.AnyValue
		switch x := kv[i+1].(type) {
		case string:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: x}
		case int:
			v.Value = &commonpb.AnyValue_IntValue{IntValue: int64(x)}
		case bool:
			v.Value = &commonpb.AnyValue_BoolValue{BoolValue: x}
		}
		out = append(out, &commonpb.KeyValue{Key: kv[i].(string), Value: &v})
	}
	return out
}

// gen makes export requests of realistic spans: each request is one
// service's batch of traces of 10 spans (an HTTP server span, an internal
// span, database, cache and HTTP client spans, a producer span), with
// the attributes OpenTelemetry's HTTP, database and messaging
// conventions give them, and random IDs.
type gen struct {
	rnd *rand.Rand
	now time.Time
	n   int
}

func newGen(seed uint64, now time.Time) *gen {
	return &gen{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: now}
}

func (g *gen) id(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], g.rnd.Uint64()|1)
		copy(b[i:], w[:])
	}
	return b
}

// request returns an export of spans spans (a multiple of 10), its
// encoding, and its trace IDs.
func (g *gen) request(spans int) ([]byte, [][]byte) {
	g.n++
	svc := services[g.n%len(services)]
	res := &resourcepb.Resource{Attributes: kvs(
		"service.name", svc, "service.version", "1.8.3", "service.instance.id", fmt.Sprintf("%s-%d", svc, g.n%3),
		"host.name", "sandbox-7", "telemetry.sdk.name", "opentelemetry", "telemetry.sdk.language", "go", "telemetry.sdk.version", "1.32.0",
		"deployment.environment.name", "production")}
	ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.57.0"}}
	var traces [][]byte
	for range spans / 10 {
		tid := g.id(16)
		traces = append(traces, tid)
		ss.Spans = append(ss.Spans, g.trace(tid)...)
	}
	body, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{Resource: res, ScopeSpans: []*tracepb.ScopeSpans{ss}}}})
	if err != nil {
		panic(err) // generated messages always encode
	}
	return body, traces
}

func (g *gen) trace(tid []byte) []*tracepb.Span {
	start := g.now.Add(-time.Duration(g.rnd.IntN(int(time.Minute))))
	at := func(d time.Duration) uint64 { return uint64(start.Add(d).UnixNano()) }
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	route := routes[g.rnd.IntN(len(routes))]
	id := g.rnd.IntN(1_000_000)
	status := 200
	if g.rnd.IntN(50) == 0 {
		status = 500
	}
	total := 5 + g.rnd.IntN(200)
	root := &tracepb.Span{TraceId: tid, SpanId: g.id(8), Name: "GET " + route, Kind: tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: at(0), EndTimeUnixNano: at(ms(total)),
		Attributes: kvs("http.request.method", "GET", "url.full", fmt.Sprintf("https://shop.example.com%s?id=%d", route, id),
			"url.scheme", "https", "http.route", route, "http.response.status_code", status, "server.address", "shop.example.com",
			"client.address", fmt.Sprintf("10.0.%d.%d", g.rnd.IntN(255), g.rnd.IntN(255)), "user_agent.original", agents[g.rnd.IntN(len(agents))],
			"network.protocol.version", "1.1")}
	if status == 500 {
		root.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "internal error"}
	}
	spans := []*tracepb.Span{root}
	child := func(parent *tracepb.Span, name string, kind tracepb.Span_SpanKind, from, dur time.Duration, attrs ...any) *tracepb.Span {
		s := &tracepb.Span{TraceId: tid, SpanId: g.id(8), ParentSpanId: parent.SpanId, Name: name, Kind: kind,
			StartTimeUnixNano: at(from), EndTimeUnixNano: at(from + dur), Attributes: kvs(attrs...)}
		spans = append(spans, s)
		return s
	}
	handler := child(root, "handle "+route, tracepb.Span_SPAN_KIND_INTERNAL, ms(1), ms(total-2), "app.user_id", fmt.Sprintf("u-%d", id%9973))
	for i := range 3 {
		st := statements[g.rnd.IntN(len(statements))]
		child(handler, "postgresql "+st[:6], tracepb.Span_SPAN_KIND_CLIENT, ms(2+i), ms(1), "db.system", "postgresql",
			"db.namespace", "shop", "db.query.text", st, "server.address", "db.internal", "server.port", 5432, "db.response.rows", g.rnd.IntN(40))
	}
	for i := range 2 {
		child(handler, "GET", tracepb.Span_SPAN_KIND_CLIENT, ms(3+i), ms(2), "db.system", "redis", "db.query.text", fmt.Sprintf("GET cart:%d", id),
			"server.address", "cache.internal", "server.port", 6379)
	}
	inv := child(handler, "GET /inventory/{sku}", tracepb.Span_SPAN_KIND_CLIENT, ms(4), ms(total/2), "http.request.method", "GET",
		"url.full", fmt.Sprintf("http://inventory.internal/inventory/SKU-%d", id%5000), "http.response.status_code", 200, "server.address", "inventory.internal")
	child(inv, "dns lookup", tracepb.Span_SPAN_KIND_INTERNAL, ms(4), ms(0), "net.host.name", "inventory.internal")
	child(handler, "orders publish", tracepb.Span_SPAN_KIND_PRODUCER, ms(total-3), ms(1), "messaging.system", "nats",
		"messaging.destination.name", "orders", "messaging.message.id", fmt.Sprintf("%x", g.id(8)), "messaging.message.body.size", 200+g.rnd.IntN(800))
	if status == 500 {
		handler.Events = []*tracepb.Span_Event{{Name: "exception", TimeUnixNano: at(ms(total - 2)),
			Attributes: kvs("exception.type", "*pq.Error", "exception.message", "pq: deadlock detected", "exception.escaped", true)}}
	}
	return spans
}
