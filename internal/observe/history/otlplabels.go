package history

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// Bounds of what an app may send in one data point.
const (
	maxLabels        = 32   // labels of a series, its name and app, job, instance, le included
	maxLabelNameLen  = 128  // bytes of an attribute key
	maxLabelValueLen = 1024 // bytes of an attribute value, as text
	maxNameLen       = 256  // bytes of a metric name, before and after translation
	maxBuckets       = 256  // explicit bounds of a histogram point
	maxQuantiles     = 64   // quantiles of a summary point
	maxExemplars     = 16   // exemplars of a point; more are ignored
	jsonDepth        = 8    // nesting of an array or map attribute value
)

// reservedPrefix starts the names of the platform's own metrics, which an
// app may not write.
const reservedPrefix = "noops_"

// unknownJob is the job of an app's series whose resource has no
// service.name, or claims the platform's.
const unknownJob = "unknown_service"

var (
	errTooLong = errors.New("too long")
	errDepth   = errors.New("nested too deeply")
)

// metricName translates an OTLP metric name and unit the way Prometheus'
// OTLP endpoint does by default (UnderscoreEscapingWithSuffixes): invalid
// characters become underscores, the unit is appended as a word
// ("s" → _seconds, "By" → _bytes, "1" on a gauge → _ratio, "{req}/s" →
// _per_second), and a monotonic sum gets _total.
func metricName(m *metricspb.Metric, typ otlptranslator.MetricType) (string, error) {
	if len(m.GetName()) > maxNameLen || len(m.GetUnit()) > maxNameLen {
		return "", fmt.Errorf("metric name or unit: %w", errTooLong)
	}
	if !utf8.ValidString(m.GetName()) || !utf8.ValidString(m.GetUnit()) {
		return "", errors.New("metric name or unit is not UTF-8")
	}
	mn := otlptranslator.NewMetricNamer("", otlptranslator.UnderscoreEscapingWithSuffixes)
	name, err := mn.Build(otlptranslator.Metric{Name: m.GetName(), Unit: m.GetUnit(), Type: typ})
	switch {
	case err != nil:
		return "", err
	case name == "":
		return "", errors.New("empty metric name")
	case len(name) > maxNameLen:
		return "", fmt.Errorf("metric name %.32q…: %w", name, errTooLong)
	case strings.HasPrefix(name, reservedPrefix):
		return "", fmt.Errorf("metric name %q: the prefix %q is the platform's", name, reservedPrefix)
	}
	return name, nil
}

// jobOf returns the job and instance labels of a resource, as Prometheus
// derives them: service.namespace/service.name and service.instance.id.
func jobOf(attrs []*commonpb.KeyValue) (job, instance string) {
	var name, ns string
	for _, kv := range attrs {
		v, err := anyString(kv.GetValue())
		if err != nil {
			continue
		}
		switch kv.GetKey() {
		case "service.name":
			name = v
		case "service.namespace":
			ns = v
		case "service.instance.id":
			instance = v
		}
	}
	job = name
	if ns != "" && name != "" {
		job = ns + "/" + name
	}
	if job == "" || job == PlatformJob {
		job = unknownJob
	}
	return job, instance
}

type labelPair struct{ name, key, value string }

// pointLabels turns a data point's attributes into a series' labels
// (without the metric name) with app, job and instance set by the
// platform. Attribute keys are translated as Prometheus does (invalid
// characters become underscores, a leading digit gets "key_"); keys that
// translate alike have their values joined with ";" in key order. Keys
// that would become the platform's labels (app, job, instance) or
// reserved ones (starting with "__") are dropped; empty keys and values
// are ignored.
func (b *otlpBatch) pointLabels(attrs []*commonpb.KeyValue) (labels.Labels, error) {
	if len(attrs) > 2*maxLabels {
		return labels.EmptyLabels(), fmt.Errorf("%d attributes, more than %d", len(attrs), maxLabels)
	}
	pairs := b.pairs[:0]
	for _, kv := range attrs {
		k := kv.GetKey()
		if k == "" {
			continue
		}
		if len(k) > maxLabelNameLen || !utf8.ValidString(k) {
			return labels.EmptyLabels(), fmt.Errorf("attribute key %.32q…: too long or not UTF-8", k)
		}
		n, err := b.ln.Build(k)
		if err != nil {
			return labels.EmptyLabels(), fmt.Errorf("attribute key %q: %w", k, err)
		}
		if strings.HasPrefix(n, "__") || n == "app" || n == "job" || n == "instance" {
			continue
		}
		v, err := anyString(kv.GetValue())
		if err != nil {
			return labels.EmptyLabels(), fmt.Errorf("attribute %q: %w", k, err)
		}
		if v != "" {
			pairs = append(pairs, labelPair{n, k, v})
		}
	}
	slices.SortFunc(pairs, func(a, b labelPair) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	b.pairs = pairs
	b.sb.Reset()
	n := 0
	for i := 0; i < len(pairs); i++ {
		p := pairs[i]
		v := p.value
		for i+1 < len(pairs) && pairs[i+1].name == p.name {
			i++
			v += ";" + pairs[i].value
		}
		if len(v) > maxLabelValueLen {
			return labels.EmptyLabels(), fmt.Errorf("attribute %q: value %w", p.key, errTooLong)
		}
		b.sb.Add(p.name, v)
		n++
	}
	b.sb.Add("app", b.app)
	b.sb.Add("job", b.job)
	n += 2
	if b.instance != "" {
		b.sb.Add("instance", b.instance)
		n++
	}
	if n+2 > maxLabels { // and the name, and le or quantile
		return labels.EmptyLabels(), fmt.Errorf("%d labels, more than %d", n+2, maxLabels)
	}
	b.sb.Sort()
	return b.sb.Labels(), nil
}

// anyString renders an attribute value as Prometheus does: strings as
// they are, numbers and booleans as text, bytes in base64, arrays and maps
// as JSON. The text must be UTF-8 of at most maxLabelValueLen bytes.
func anyString(v *commonpb.AnyValue) (string, error) {
	var s string
	switch x := v.GetValue().(type) {
	case nil, *commonpb.AnyValue_StringValueStrindex:
		return "", nil
	case *commonpb.AnyValue_StringValue:
		s = x.StringValue
	case *commonpb.AnyValue_BoolValue:
		s = strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		s = strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		s = strconv.FormatFloat(x.DoubleValue, 'f', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		if base64.StdEncoding.EncodedLen(len(x.BytesValue)) > maxLabelValueLen {
			return "", fmt.Errorf("value %w", errTooLong)
		}
		s = base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		var sb strings.Builder
		if err := writeJSON(&sb, v, 0); err != nil {
			return "", fmt.Errorf("value %w", err)
		}
		s = sb.String()
	default:
		return "", fmt.Errorf("value of type %T", x)
	}
	if len(s) > maxLabelValueLen {
		return "", fmt.Errorf("value %w", errTooLong)
	}
	if !utf8.ValidString(s) {
		return "", errors.New("value is not UTF-8")
	}
	return s, nil
}

// writeJSON renders v as JSON into sb, stopping as soon as sb is longer
// than maxLabelValueLen or v is nested deeper than jsonDepth.
func writeJSON(sb *strings.Builder, v *commonpb.AnyValue, depth int) error {
	if depth > jsonDepth {
		return errDepth
	}
	if sb.Len() > maxLabelValueLen {
		return errTooLong
	}
	str := func(s string) {
		if len(s) > maxLabelValueLen {
			s = s[:maxLabelValueLen+1] // too long anyway: don't quote more
		}
		q, _ := json.Marshal(s)
		sb.Write(q)
	}
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_ArrayValue:
		sb.WriteByte('[')
		for i, e := range x.ArrayValue.GetValues() {
			if i > 0 {
				sb.WriteByte(',')
			}
			if err := writeJSON(sb, e, depth+1); err != nil {
				return err
			}
		}
		sb.WriteByte(']')
	case *commonpb.AnyValue_KvlistValue:
		sb.WriteByte('{')
		for i, kv := range x.KvlistValue.GetValues() {
			if i > 0 {
				sb.WriteByte(',')
			}
			str(kv.GetKey())
			sb.WriteByte(':')
			if err := writeJSON(sb, kv.GetValue(), depth+1); err != nil {
				return err
			}
		}
		sb.WriteByte('}')
	case *commonpb.AnyValue_StringValue:
		str(x.StringValue)
	case *commonpb.AnyValue_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			str(strconv.FormatFloat(x.DoubleValue, 'f', -1, 64))
		} else {
			sb.WriteString(strconv.FormatFloat(x.DoubleValue, 'f', -1, 64))
		}
	case nil, *commonpb.AnyValue_StringValueStrindex:
		sb.WriteString("null")
	default:
		s, err := anyString(v)
		if err != nil {
			return err
		}
		if _, ok := x.(*commonpb.AnyValue_BytesValue); ok {
			str(s)
		} else {
			sb.WriteString(s)
		}
	}
	if sb.Len() > maxLabelValueLen {
		return errTooLong
	}
	return nil
}

// pointExemplars converts the exemplars that carry a trace ID into ones
// with the labels trace_id and span_id (hex), sorted by time; one without
// a time gets the point's t.
func (b *otlpBatch) pointExemplars(es []*metricspb.Exemplar, t int64) []exemplar.Exemplar {
	var out []exemplar.Exemplar
	for _, e := range es[:min(len(es), maxExemplars)] {
		tid := e.GetTraceId()
		if len(tid) != 16 || allZero(tid) {
			continue
		}
		var v float64
		switch x := e.GetValue().(type) {
		case *metricspb.Exemplar_AsDouble:
			v = x.AsDouble
		case *metricspb.Exemplar_AsInt:
			v = float64(x.AsInt)
		default:
			continue
		}
		ts := t
		if ns := e.GetTimeUnixNano(); ns != 0 && int64(ns/1e6) >= b.minT && int64(ns/1e6) <= b.maxT {
			ts = int64(ns / 1e6)
		}
		ls := labels.FromStrings("trace_id", hex.EncodeToString(tid))
		if sid := e.GetSpanId(); len(sid) == 8 {
			ls = labels.FromStrings("span_id", hex.EncodeToString(sid), "trace_id", hex.EncodeToString(tid))
		}
		out = append(out, exemplar.Exemplar{Labels: ls, Value: v, Ts: ts, HasTs: true})
	}
	slices.SortStableFunc(out, func(a, b exemplar.Exemplar) int { return exemplar.Compare(a, b) })
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
