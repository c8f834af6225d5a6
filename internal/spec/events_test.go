package spec

import (
	"strings"
	"testing"
	"time"
)

func TestEventSections(t *testing.T) {
	m, err := Parse([]byte(`
triggers: [ { topic: orders.created }, { topic: "audit.>" }, { cron: "*/5 * * * *" }, { cron: "@every 30s" } ]
function: { path: /events, timeout: 10s, retries: 0, backoff: 100ms, max_age: 1h, concurrency: 4, ordered: true, idempotency: 24h }
events: { publish: [ orders.billed, "orders.*" ] }
`))
	if err != nil {
		t.Fatal(err)
	}
	f := m.Function
	if f.Path != "/events" || *f.Retries != 0 || f.Attempts() != 1 || f.IdempotencyTTL() != 24*time.Hour || f.MaxBackoff != DefaultMaxBackoff {
		t.Fatalf("function %+v", f)
	}
	d, _ := Parse(nil)
	if d.Function.Attempts() != 3 || d.Function.IdempotencyTTL() != time.Hour || d.Function.Timeout != DefaultFunctionTimeout {
		t.Fatalf("defaults %+v", d.Function)
	}
	if (Function{Idempotency: "off"}).IdempotencyTTL() != 0 {
		t.Fatal("idempotency off")
	}
	c := ConfigOf(m, "")
	if len(c.Triggers) != 4 || c.FunctionOrDefault().Concurrency != 4 || len(c.Events.Publish) != 2 {
		t.Fatalf("config %+v", c)
	}
}

func TestEventSectionErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{`triggers: [ { topic: "a b" } ]`, "triggers[0].topic: topic \"a b\" has the forbidden character"},
		{`triggers: [ { topic: a, cron: "* * * * *" } ]`, "triggers[0]: set one of topic or cron"},
		{`triggers: [ {} ]`, "set one of topic or cron"},
		{`triggers: [ { cron: "61 * * * *" } ]`, "triggers[0].cron: cron \"61 * * * *\" does not parse"},
		{`triggers: [ { topic: a }, { topic: a } ]`, "triggers[1]: listed twice"},
		{`triggers: [ { topic: "a.>.b" } ]`, "forbidden character"},
		{`function: { timeout: 5m }`, "function.timeout: 5m0s is out of range"},
		{`function: { retries: 101 }`, "function.retries: 101 is out of range"},
		{`function: { concurrency: 0 }`, ""},
		{`function: { concurrency: 1001 }`, "function.concurrency"},
		{`function: { idempotency: forever }`, "function.idempotency"},
		{`function: { path: events }`, "function.path"},
		{`function: { max_age: 30s }`, "function.max_age"},
		{`events: { publish: [ "" ] }`, "events.publish[0]: the topic is empty"},
		{`function: { retry: 3 }`, "field retry not found"},
	} {
		_, err := Parse([]byte(tc.yaml))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.yaml, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	long := strings.Repeat("a.", 101) + "a"
	if err := ValidTopic(long); err == nil || !strings.Contains(err.Error(), "at most 200") {
		t.Errorf("long topic: %v", err)
	}
}

func TestTopicMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, topic string
		want           bool
	}{
		{"orders.created", "orders.created", true},
		{"orders.created", "orders.billed", false},
		{"orders.*", "orders.created", true},
		{"orders.*", "orders.created.eu", false},
		{"orders.>", "orders.created.eu", true},
		{"orders.>", "orders", false},
		{"*.created", "orders.created", true},
		{"orders", "orders.created", false},
	} {
		if got := TopicMatches(tc.pattern, tc.topic); got != tc.want {
			t.Errorf("TopicMatches(%q, %q) = %v", tc.pattern, tc.topic, got)
		}
	}
}
