// Package export sends the platform's telemetry (spans, metric samples and
// log records, already in OTLP form) to any OTLP receiver: an OpenTelemetry
// Collector, or a backend that speaks OTLP. The embedded stores stay the
// default; a user who outgrows them points noops at a receiver here.
//
// # Queue
//
// Traces, Metrics and Logs never touch the network: each serializes its
// request and appends it, as one record, to that signal's queue on disk,
// then returns. Each signal (traces, metrics, logs) has its own directory
// under Config.Dir holding append-only segment files and an ack file:
//
//	<Dir>/traces/00000000000000000042.seg   records 42, 43, … in order
//	<Dir>/traces/ack                        the oldest record not yet delivered
//
// A segment is a magic header followed by records framed as length,
// CRC-32C and sequence number, then the serialized Export*ServiceRequest
// (see record.go). A segment is closed once it reaches a sixteenth of
// Config.MaxQueueBytes; a segment all of whose records were delivered is
// deleted. When appending would take the queue past MaxQueueBytes, the
// oldest segments are deleted, and their batches counted in
// Stats.Dropped["queue_full"]: the newest telemetry is the most useful.
//
// Appends are not fsynced; Stop fsyncs the segment being written and the
// ack file. New reads every segment and checks every record: it cuts a
// segment at its first bad record (the torn tail of a crash, usually) with
// a warning, never failing to start, and starts a new segment for what is
// appended next. The ack file is updated in place after each delivery, in
// two checksummed slots written in turn, so that a torn write spoils one
// slot at most; if both are lost, everything still on disk is sent again. Delivery is therefore at least once: a crash, or a Stop that cut
// a request short, can send a batch twice, never lose one that was
// queued, short of the disk losing it.
//
// # Sending
//
// Start runs one goroutine per signal. It reads the oldest records and
// sends them in one export request, in order; consecutive records are
// merged up to Config.MaxRequestBytes by concatenating them, which for
// protobuf messages whose one field is repeated is the same as appending
// their resource lists. A signal's failures hold up only that signal.
// Requests go to Endpoint + /v1/traces (/v1/metrics, /v1/logs) as
// binary protobuf over HTTP (Protocol "http/protobuf"), or to the OTLP gRPC
// services (Protocol "grpc"), gzip-compressed unless Compression is
// "none", with Config.Headers, each bounded by Config.Timeout.
//
// A failed request is classified as the OTLP specification says:
//
//   - retryable (HTTP 429, 502, 503, 504, network errors and timeouts;
//     gRPC Canceled, DeadlineExceeded, Aborted, OutOfRange, Unavailable,
//     DataLoss, and ResourceExhausted when it carries RetryInfo): the
//     batch is retried after Backoff, doubling with jitter up to
//     MaxBackoff, or after the receiver's Retry-After or RetryInfo delay
//     (capped at MaxBackoff);
//   - refused (HTTP 401, 403, 404 and redirects; gRPC Unauthenticated,
//     PermissionDenied, Unimplemented): the receiver refuses the exporter,
//     not the data; a wrong token or path is a mistake someone will fix,
//     so the batch is kept and retried about every MaxBackoff, logged at
//     error level and flagged in Stats (Refused) meanwhile. The queue
//     stays bounded by MaxQueueBytes;
//   - permanent (any other status): the batch is dropped, logged with the
//     receiver's message and counted in Stats.Dropped["rejected"].
//
// A partial-success reply counts as delivered; the rejected item count is
// logged and added to Stats.
//
// Stop refuses new batches, lets each signal send what is queued until
// its queue is empty, one of its requests fails or Stop's context ends,
// then syncs the queues; what is left is sent by the next Exporter on the
// same Dir.
//
// # Secrets
//
// Header values (an authorization token, typically) are never logged.
// Errors and Stats name the endpoint only as scheme://host:port, and have
// every header value cut out, in case a receiver echoes one back. An
// endpoint URL may not carry credentials; plain-text http:// is refused
// for a host that is not loopback unless Config.AllowInsecure is set.
package export
