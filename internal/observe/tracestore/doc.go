// Package tracestore is the embedded trace store: the spans that the
// gateway makes and that apps export over OTLP (internal/observe/otlp),
// kept on local disk for `noops trace ID` and the recent-traces list.
//
// # Layout
//
// The store is a folder of segment files. Time is cut into partitions
// (Options.Partition, 1 h by default) by span start; a partition's spans
// go to its segments, named after the partition's start and a sequence
// number (20260105T140000Z-000001.seg). A segment is closed for appends
// once it reaches 1/16 of MaxBytes (1 to 64 MiB) and the next one starts.
// A span that starts in the future is filed under the partition of now;
// one that started longer than MaxAge ago is counted and dropped.
//
// A segment is a sequence of blocks, each appended whole by one write:
//
//	header (56 bytes: magic, sizes, CRC-32C of each section, the
//	        smallest and largest span start, its own CRC-32C)
//	trace table, zstd: per trace in the block, its ID, start, end,
//	        span and error counts, and the root span's name, service
//	        and app, the distinct apps and services
//	payload, zstd: the spans, sorted by trace ID then start
//
// The sections' encodings are in codec.go and table.go. Times are
// nanoseconds from the block's smallest start, so they stay short.
//
// # Index
//
// Open reads every block's header and trace table (not its spans) and
// keeps in memory, per block, its header and a bloom filter of its trace
// IDs (1 % false positives, about 1.2 bytes per trace). Trace tests every
// block's filter and decompresses only the payloads that may hold the
// trace, so the spans of a trace that arrived minutes apart, in other
// blocks or partitions, are all found; the payload decoder skips the
// other traces' spans without allocating. Search reads only trace tables,
// of the blocks with spans that started since Query.From, newest first,
// and merges them per trace.
//
// # Writing
//
// Add is the hot path: it checks IDs, bounds text, attributes and events
// (the Max constants), and appends to an in-memory buffer. When the buffer
// holds BlockSpans spans or about 1 MiB, it is cut into chunks of one
// partition each, and the Add call that filled it encodes, compresses and
// appends them as blocks: ingest runs at the pace of the compressor and
// the disk rather than piling up spans in memory, and writers on several
// cores compress in parallel (appends are serialised). A background
// writer cuts the buffer every FlushEvery when it is older than that, and
// retries a chunk whose write failed (it stays pending, no partial block
// stays in the file). Buffered and pending spans are visible to Trace and
// Search. The memory they take is bounded by MaxBuffer: past it Add
// refuses with ErrBusy (errkind.Unavailable), which the OTLP receiver
// turns into a retryable 503.
//
// Appends are not fsynced; Close writes the buffer and fsyncs the
// segments it wrote. A crash loses at most the buffer and leaves at most
// a torn last block, which Open finds (a short block, or a bad header,
// trace-table or last-payload checksum), cuts off with a warning and
// counts in Stats.CorruptBytes. A payload found corrupt later, when read,
// is skipped with a warning (Stats.CorruptBlocks).
//
// # Retention
//
// After each write and every FlushEvery, whole segments are deleted:
// those whose newest span is older than MaxAge, then the oldest
// partition's segments while the total is over MaxBytes (the newest
// segment always stays).
package tracestore
