// Package otlp receives OpenTelemetry data from the apps' SDKs: the
// OTLP/HTTP endpoints (ServeHTTP, mounted by the gateway under a prefix
// such as /.noops/otlp/) and the OTLP/gRPC collector services
// (RegisterGRPC), for traces, logs and metrics.
//
// # Who sent it
//
// Every request is attributed to the noops app whose workload identity
// the client presented: Config.Caller (HTTP) and Config.CallerGRPC (gRPC)
// answer that, before the body is read, so an unidentified client costs
// no decompression or decoding. The app is passed to the callbacks and
// set as every span's App; nothing in the payload (resource attributes
// included) can claim another app. A span's Service is its resource's
// service.name ("unknown_service" when none).
//
// # Bad input
//
// A body is read up to Config.MaxBody (4 MiB) bytes, and a gzip body is
// decompressed up to the same bound, so a gzip bomb costs at most MaxBody
// bytes of memory and ends in 413. gRPC messages are bounded by the same
// size through ServerOptions (gRPC applies it after decompression).
// Garbage, truncated protobuf and invalid JSON get 400 with a
// google.rpc.Status. Spans are checked one by one (Convert): a span with
// a malformed trace, span or parent ID or no start time is left out and
// counted in partial_success.rejected_spans with the first reason, and
// the others are kept. Text, attributes and events are cut to the
// tracestore bounds while converting, so what a hostile client sends
// cannot grow the store's records.
//
// # OTLP JSON
//
// OTLP's JSON differs from protobuf's canonical JSON mapping in that
// trace and span IDs are hex strings rather than base64. The JSON path
// decodes the body once into generic values, rewrites every traceId,
// spanId and parentSpanId (and their snake_case forms) from hex to base64
// (an ID that is not hex of the right length becomes a one-byte ID,
// rejected per span), and hands the result to protojson, which accepts
// enums as names or numbers and 64-bit integers as strings or numbers.
//
// # Backpressure
//
// A callback that cannot take more returns ErrBusy (or an error
// classified errkind.TooMany): HTTP 429, gRPC RESOURCE_EXHAUSTED. One
// classified errkind.Unavailable, as tracestore.ErrBusy is, gives HTTP
// 503 and gRPC UNAVAILABLE. Each carries a retry delay (Retry-After,
// RetryInfo) of Config.RetryAfter, which OTLP exporters honour.
package otlp
