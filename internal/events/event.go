// Package events is the platform's message-driven primitive on NATS
// JetStream: topics and publishing (CloudEvents attributes and W3C trace
// context on every event), triggers that push events to an app's HTTP
// endpoint (topic subscriptions, cron schedules, asynchronous
// invocations), at-least-once delivery with retries, backoff, a maximum
// age and dead letters, ordering per partition key, and idempotency
// records in JetStream key-value buckets.
//
// One code path serves both deployments: the embedded server (Embedded,
// in-process, no port) and an external NATS cluster are both a
// *nats.Conn given to Open.
package events

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"noops/internal/errkind"
	"noops/internal/observe/trace"
	"noops/internal/spec"
)

// Event is one CloudEvent (spec 1.0) with its data.
type Event struct {
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Type        string    `json:"type"`
	Topic       string    `json:"topic"` // the CloudEvents subject
	Time        time.Time `json:"time"`
	ContentType string    `json:"datacontenttype,omitempty"`
	// PartitionKey orders delivery to functions that ask for it (the
	// CloudEvents partitioning extension).
	PartitionKey string `json:"partitionkey,omitempty"`
	// TraceParent is the W3C trace context the event carries through
	// every hop.
	TraceParent string `json:"traceparent,omitempty"`
	Data        []byte `json:"data,omitempty"`
}

// Limits on events.
const (
	DefaultMaxEventSize = 1 << 20 // data and attributes
	maxAttrLen          = 1024
)

// Header names on the wire. The NATS message carries the CloudEvents
// attributes as the NATS protocol binding's binary mode does (ce-*
// headers, content-type); HTTP deliveries the same in HTTP binary mode.
const (
	hSpec        = "ce-specversion"
	hID          = "ce-id"
	hSource      = "ce-source"
	hType        = "ce-type"
	hTime        = "ce-time"
	hSubject     = "ce-subject"
	hPartition   = "ce-partitionkey"
	hContentType = "content-type"
	hTraceParent = "traceparent"
)

// canonical is the HTTP form of each header name header writes.
var canonical = map[string]string{}

func init() {
	for _, k := range []string{hSpec, hID, hSource, hType, hTime, hSubject, hPartition, hContentType, hTraceParent} {
		canonical[k] = http.CanonicalHeaderKey(k)
	}
}

// Prepare validates an event and fills what the publisher left out: a
// new ID, the time, the type, a new trace. defaultSource is used when
// Source is empty.
func (e *Event) Prepare(defaultSource string, maxSize int) error {
	if err := spec.ValidTopic(e.Topic); err != nil {
		return errkind.Errorf(errkind.Invalid, "publishing: %v", err)
	}
	if maxSize <= 0 {
		maxSize = DefaultMaxEventSize
	}
	if n := len(e.Data); n > maxSize {
		return errkind.WithHint(errkind.Invalid, fmt.Errorf("publishing to %s: the event is %d bytes, over the limit of %d", e.Topic, n, maxSize),
			"send a reference (a URL, an object key) instead of the data, or raise --event-size")
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Source == "" {
		e.Source = defaultSource
	}
	if e.Type == "" {
		e.Type = "dev.noops.event"
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	for name, v := range map[string]string{"id": e.ID, "source": e.Source, "type": e.Type, "partitionkey": e.PartitionKey, "datacontenttype": e.ContentType} {
		if len(v) > maxAttrLen || strings.ContainsAny(v, "\r\n\x00") {
			return errkind.Errorf(errkind.Invalid, "publishing to %s: attribute %s is over %d bytes or has a control character", e.Topic, name, maxAttrLen)
		}
	}
	if _, ok := trace.Parse(e.TraceParent); !ok {
		e.TraceParent = trace.New().String()
	}
	return nil
}

// header writes the event's attributes as ce-* headers (NATS or HTTP).
func (e *Event) header(set func(k, v string)) {
	set(hSpec, "1.0")
	set(hID, e.ID)
	set(hSource, e.Source)
	set(hType, e.Type)
	set(hSubject, e.Topic)
	set(hTime, e.Time.UTC().Format(time.RFC3339Nano))
	if e.ContentType != "" {
		set(hContentType, e.ContentType)
	}
	if e.PartitionKey != "" {
		set(hPartition, e.PartitionKey)
	}
	if e.TraceParent != "" {
		set(hTraceParent, e.TraceParent)
	}
}

// fromHeader reads an event's attributes back.
func fromHeader(get func(k string) string, data []byte) (Event, error) {
	e := Event{ID: get(hID), Source: get(hSource), Type: get(hType), Topic: get(hSubject), ContentType: get(hContentType),
		PartitionKey: get(hPartition), TraceParent: get(hTraceParent), Data: data}
	if e.ID == "" {
		return e, fmt.Errorf("the message has no %s header: it is not an event", hID)
	}
	if t := get(hTime); t != "" {
		var err error
		if e.Time, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return e, fmt.Errorf("event %s: bad %s %q", e.ID, hTime, t)
		}
	}
	return e, nil
}

// natsMsg is the event as a message on subject.
func (e *Event) natsMsg(subject string) *nats.Msg {
	m := nats.NewMsg(subject)
	e.header(func(k, v string) { m.Header[k] = []string{v} })
	m.Header[nats.MsgIdHdr] = []string{e.ID}
	m.Data = e.Data
	return m
}

// FromMsg reads an event from a NATS message.
func FromMsg(h nats.Header, data []byte) (Event, error) {
	return fromHeader(func(k string) string { return h.Get(k) }, data)
}

// HTTPHeader sets the event's attributes on an HTTP request (CloudEvents
// HTTP binary mode) with a child trace context: same trace, new span.
func (e *Event) HTTPHeader(h http.Header) {
	e.header(func(k, v string) { h[canonical[k]] = []string{v} })
	if tp, ok := trace.Parse(e.TraceParent); ok {
		h.Set(hTraceParent, tp.Child().String())
	}
}

// EventFromHTTP reads an event a client sent in binary mode: data is the
// body, the topic comes from the path. Missing attributes are left for
// Prepare.
func EventFromHTTP(topic string, h http.Header, body []byte) Event {
	return Event{ID: h.Get(hID), Source: h.Get(hSource), Type: h.Get(hType), Topic: topic, ContentType: h.Get("Content-Type"),
		PartitionKey: h.Get(hPartition), TraceParent: h.Get(hTraceParent), Data: body}
}

// NewID returns a random event ID (128 bits, hex).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
