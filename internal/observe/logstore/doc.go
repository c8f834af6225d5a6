// Package logstore is the platform's embedded log store: sandbox stdout
// and stderr, gateway access logs, platform events and OTLP log records,
// in one directory, partitioned by time and compressed, with retention by
// age and size that removes whole partitions. `noops logs APP [-f]
// [--since] [--grep] [--json]` reads it through Query and Follow. A
// Collector (collect.go) tails the sandboxes' own log files into it.
//
// # Writing
//
// Append is on the gateway's request path, so it only copies the records
// (and their Access) into a buffer under a mutex and, when the buffer
// holds 4096 records, wakes the writer goroutine; it waits only when the
// buffer is four times that (back-pressure, no I/O on the caller). The
// writer takes the buffer at least every FlushEvery (and on Flush), then:
//
//  1. cleans every record: invalid UTF-8 becomes U+FFFD, control
//     characters other than tab are escaped (\n, \r, \xHH), Line is cut
//     at a rune boundary at MaxLine and other fields at 256 bytes (names)
//     or 8 KiB (host, path, user agent, referer), setting Truncated;
//     times are kept to the microsecond; records older than MaxAge, older
//     than a partition already removed, or more than a day in the future
//     are refused and counted (Stats.Dropped);
//  2. appends them to the write-ahead log (head.wal) as one block,
//     S2-compressed, and fsyncs it: from here a crash loses nothing;
//  3. adds them to the head, an in-memory list that queries and
//     followers see at once;
//  4. when the head holds BlockRecords (16384) records or about 8 MiB,
//     seals it: sorts it by time, writes it as zstd blocks of at most
//     BlockRecords records to the partitions' files, fsyncs them, makes
//     the blocks visible and empties the head in one step, and truncates
//     the write-ahead log. Close does the same with whatever is left.
//
// So blocks are large (good compression) however slowly lines arrive,
// and records are durable and queryable within FlushEvery.
//
// # Partitions and retention
//
// A partition is one file, START-SPANs.lgs (20261206T100000Z-3600s.lgs),
// holding the blocks of records whose time falls in [START, START+SPAN)
// (Options.Partition, 1h by default); late records go to their own
// partition as long as it has not been removed. Retention runs on Open
// and every FlushEvery: it removes partitions that ended more than MaxAge
// ago (7 days), then the oldest ones while the store holds more than
// MaxBytes (1 GiB) — never the newest, so a store whose newest partition
// alone is over MaxBytes holds that one.
//
// # Blocks
//
// A block on disk is a frame: a 24-byte header (magic, lengths, CRC-32C
// of the index, of the body and of the header), a small uncompressed
// index (head generation, record count, first and last time, the set of
// streams as bits, the apps (up to 64, or "any"), and a bloom filter of
// the trace IDs: 5 bits per ID, 3 probes, about 9% false positives), and
// the body. Open reads only the indexes (keeping them in memory, without
// the blooms); a query skips every block whose time range, streams or
// apps cannot match, and for a trace ID every block whose bloom filter
// says no, before reading and decompressing anything.
//
// The body stores the records column by column, each column compressed
// on its own (zstd at SpeedBetterCompression with entropy coding of
// every stream; S2 in the write-ahead log), so that each gets its own
// entropy tables:
//
//   - time: the first time in the header, then differences in
//     microseconds; flags (access, truncated, how the IDs are kept);
//   - dictionary-coded strings: (app, host) as one pair, stream,
//     sandbox, severity, method, proto, client, user, user agent,
//     referer, and the path's template: the path with every standalone
//     decimal number (no leading zero, at most 15 digits) replaced by a
//     placeholder, the numbers going to a numeric column, so
//     "/products/1234/reviews?page=2" costs a dictionary index and two
//     small numbers;
//   - numbers (dictionary indices, status, duration in microseconds,
//     bytes in and out, path numbers) split into byte planes, least
//     significant first, each compressed on its own: the skewed upper
//     bytes shrink to almost nothing;
//   - trace IDs as 16 raw bytes and span IDs as 8, stored raw (random:
//     incompressible); IDs that are not lowercase hex as strings;
//   - lines as NUL-terminated strings (cleaned text holds no NUL).
//
// On realistic access logs (bench/logs.sh) a record takes about 29.5
// bytes on disk, 16 of them its trace ID, and ingest runs at about 300k
// records/s on one core.
//
// # Queries
//
// Query takes, under a read lock, the list of candidate blocks and the
// matching records of the head (sorted by time), then reads blocks
// without the lock. Forward, it merges the blocks by time, opening a
// block only when the merge reaches its first time, so memory holds the
// blocks that overlap (usually one). With Tail and Limit, it reads blocks
// newest last-time first, keeps the newest Limit matches in a heap (their
// strings copied, so that no block stays in memory for one record), stops
// at the first block that ends before the oldest of them, and emits them
// oldest first. A block that fails its checksum or decoding is skipped
// with a warning (Stats.Corrupt); one whose partition was removed during
// the query is skipped quietly. Grep and Regexp match Record.Text: the
// line (after the severity, with " trace_id=…" when set) or an access
// record's combined-log-like rendering. Fields compare a record's own
// attributes and, for a JSON line, its top-level keys (Query.Fields).
//
// Follow registers a follower and takes the snapshot for its first Query
// in one step under the lock, so that it sees every record exactly once:
// what was there before from the snapshot, the rest as the writer hands
// each flushed batch to the followers' channels. A follower whose channel
// (256 batches) is full misses the batch and ends with ErrBehind.
//
// # Crashes and damage
//
// A crash loses at most the records appended since the last flush. On
// Open, each file's frames are read up to the first one that is cut
// short or fails a checksum (the last frame's body is checked too); the
// rest of the file is cut off with a warning, never failing Open. This
// is what a crash leaves (a torn last block); damage in the middle of a
// file also loses the blocks after it, and a damaged body found at query
// time costs only its block. The write-ahead log is replayed into the
// head; a record whose partition already holds a block sealed from its
// head generation or a later one was sealed before the crash and is not
// replayed, so a crash between a seal and the truncation of the log
// duplicates nothing. A file with an unknown name is left alone, and a
// lock (flock on LOCK) keeps a second process out of the directory.
package logstore
