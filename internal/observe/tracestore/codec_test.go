package tracestore

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleSpans() []*Span {
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 123, time.UTC)
	spans := []Span{
		mkSpan(2, 1, 0, t0.Add(time.Second), 40*time.Millisecond),
		mkSpan(1, 2, 0, t0, 100*time.Millisecond),
		mkSpan(1, 3, 2, t0.Add(5*time.Millisecond), 20*time.Millisecond),
		mkSpan(1, 4, 3, t0.Add(7*time.Millisecond), time.Millisecond),
	}
	spans[2].StatusCode, spans[2].StatusMessage = "error", "connection refused"
	spans[2].Events = []SpanEvent{{Name: "exception", Time: t0.Add(6 * time.Millisecond), Attributes: map[string]string{"exception.type": "io.EOF"}}}
	spans[3].App, spans[3].Service, spans[3].Kind = "", "noops-gateway", "producer"
	out := make([]*Span, len(spans))
	for i := range spans {
		b := bound(spans[i])
		out[i] = &b
	}
	return out
}

func newTestCodecs(t testing.TB) *codecs {
	c, err := newCodecs()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func TestBlockRoundTrip(t *testing.T) {
	c := newTestCodecs(t)
	in := sampleSpans()
	b, h, table := c.encodeBlock(in)
	if h.spans != 4 || int64(len(b)) != h.size() {
		t.Fatalf("header %+v for a block of %d bytes", h, len(b))
	}
	h2, table2, spans, err := c.decodeBlock(b)
	if err != nil {
		t.Fatalf("decodeBlock = %v", err)
	}
	if h2 != h || !reflect.DeepEqual(table2, table) {
		t.Errorf("decoded header/table differ:\n%+v\n%+v", table2, table)
	}
	want := map[string]Span{}
	for _, s := range in {
		want[s.SpanID] = *s
	}
	for _, got := range spans {
		w := want[got.SpanID]
		if !reflect.DeepEqual(got, w) {
			t.Errorf("span %s:\n got %+v\nwant %+v", got.SpanID, got, w)
		}
	}
	if len(spans) != len(in) {
		t.Fatalf("decoded %d spans, want %d", len(spans), len(in))
	}
	// Sorted by trace, then start.
	if got := spanIDs(spans); !reflect.DeepEqual(got, []string{spanID(2), spanID(3), spanID(4), spanID(1)}) {
		t.Errorf("order %v", got)
	}
	// Trace table: trace 1 has a root (op-2), 3 spans, 1 error.
	if len(table) != 2 {
		t.Fatalf("table has %d traces, want 2", len(table))
	}
	sum := table[0].summary()
	if sum.TraceID != traceID(1) || sum.Root != "op-2" || sum.Spans != 3 || sum.Errors != 1 || sum.Duration != 100*time.Millisecond || sum.Partial {
		t.Errorf("summary of trace 1 = %+v", sum)
	}
	if !reflect.DeepEqual(table[0].services, []string{"svc", "noops-gateway"}) || !reflect.DeepEqual(table[0].apps, []string{"shop"}) {
		t.Errorf("services %v, apps %v", table[0].services, table[0].apps)
	}

	// Only one trace: the others are skipped.
	var only [16]byte
	parseID(only[:], traceID(2))
	got, err := c.payload(&h, b[headerSize+h.tableLen:], &only)
	if err != nil || len(got) != 1 || got[0].SpanID != spanID(1) {
		t.Errorf("payload(only trace 2) = %v, %v", spanIDs(got), err)
	}
}

func TestBlockCorruption(t *testing.T) {
	c := newTestCodecs(t)
	b, _, _ := c.encodeBlock(sampleSpans())
	cases := []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
		{"short header", func(b []byte) []byte { return b[:20] }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"header bit flip", func(b []byte) []byte { b[9] ^= 1; return b }},
		{"table bit flip", func(b []byte) []byte { b[headerSize+2] ^= 0x10; return b }},
		{"payload bit flip", func(b []byte) []byte { b[len(b)-5] ^= 0x10; return b }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := c.decodeBlock(tc.mut(bytes.Clone(b)))
			if !errors.Is(err, errCorrupt) {
				t.Errorf("decodeBlock = %v, want a corrupt-block error", err)
			}
		})
	}
}

func TestDecodePayloadBounds(t *testing.T) {
	// A count that promises more spans than bytes, and a string longer
	// than the limit, are refused before any allocation.
	cases := map[string][]byte{
		"huge count":  {0xff, 0xff, 0xff, 0x07},
		"bad varint":  {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
		"trailing":    append(encodePayload(nil, nil, 0), 0),
		"long string": append(append(append([]byte{1}, make([]byte, 25)...), 1, 0, 0, 0, 0), 0xff, 0xff, 0x03),
	}
	for name, b := range cases {
		if _, err := decodePayload(b, 1, nil); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decodePayload = %v, want corrupt", name, err)
		}
	}
}

func TestBound(t *testing.T) {
	attrs := map[string]string{}
	for i := range 100 {
		attrs[string(rune('a'+i%26))+string(rune('a'+i/26))+strings.Repeat("k", 200)] = strings.Repeat("v", 5000)
	}
	s := Span{Name: strings.Repeat("é", 1000), Kind: "weird", StatusCode: "bogus", Attributes: attrs,
		Start: time.Unix(10, 0), End: time.Unix(5, 0), Events: make([]SpanEvent, 50)}
	b := bound(s)
	if len(b.Name) > MaxNameLen || !strings.HasPrefix(s.Name, b.Name) || len(b.Name)%2 != 0 {
		t.Errorf("name cut to %d bytes, not at a rune boundary", len(b.Name))
	}
	if len(b.Attributes) != MaxAttributes || len(b.Events) != MaxEvents || b.Kind != "internal" || b.StatusCode != "unset" || !b.End.Equal(b.Start) {
		t.Errorf("bound: %d attributes, %d events, kind %q, status %q, end %v", len(b.Attributes), len(b.Events), b.Kind, b.StatusCode, b.End)
	}
	for k, v := range b.Attributes {
		if len(k) > MaxAttrKeyLen || len(v) > MaxAttrValueLen {
			t.Fatalf("attribute %d/%d bytes", len(k), len(v))
		}
	}
	if got := Truncate("a\xffb", 10); got != "a\uFFFDb" {
		t.Errorf("Truncate(invalid UTF-8) = %q", got)
	}
}

// FuzzDecodeBlock feeds arbitrary bytes to the block, payload and trace
// table decoders: they must fail cleanly or decode, never panic or
// allocate without bound, and a decoded payload must encode back to spans
// that decode the same.
func FuzzDecodeBlock(f *testing.F) {
	c := newTestCodecs(f)
	b, h, _ := c.encodeBlock(sampleSpans())
	f.Add(b)
	f.Add(b[:len(b)/2])
	raw := encodePayload(nil, func() []rawSpan {
		var rs []rawSpan
		for _, s := range sampleSpans() {
			rs = append(rs, toRaw(s))
		}
		sortRaw(rs)
		return rs
	}(), h.minStart)
	f.Add(raw)
	f.Add(encodeTable(nil, buildTable(nil), 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _, _ = c.decodeBlock(data)
		_, _ = decodeTable(data, 1e18)
		// The same bytes as a block's sections, behind a valid header, so
		// that the sections' decoders run past the checksums.
		half := len(data) / 2
		zt, zp := c.enc.EncodeAll(data[:half], nil), c.enc.EncodeAll(data[half:], nil)
		h := header{spans: 1, tableRaw: half, tableLen: len(zt), payloadRaw: len(data) - half, payLen: len(zp),
			tableCRC: crc32Checksum(zt), payloadCRC: crc32Checksum(zp), minStart: 1e18, maxStart: 1e18}
		_, _, _, _ = c.decodeBlock(append(append(h.marshal(), zt...), zp...))
		spans, err := decodePayload(data, 1e18, nil)
		if err != nil {
			return
		}
		rs := make([]rawSpan, len(spans))
		for i := range spans {
			rs[i] = toRaw(&spans[i])
			rs[i].hasParent = spans[i].ParentID != ""
		}
		again, err := decodePayload(encodePayload(nil, rs, 1e18), 1e18, nil)
		if err != nil {
			t.Fatalf("re-decoding = %v", err)
		}
		if !reflect.DeepEqual(again, spans) {
			t.Fatalf("round trip differs:\n%+v\n%+v", again, spans)
		}
	})
}
