// Package monitor runs uptime monitors, like Heartbeat or Gatus: http
// checks with status, body and latency conditions, tcp connects, tls
// certificate checks and push monitors (dead-man's switches), each with an
// up, down or flapping state, how long it has held, and its uptime.
//
// # Checks
//
// A Runner holds a set of monitors, replaced as a whole by Set. Each
// probing monitor (http, tcp, tls) has its own goroutine: the first check
// comes at a random point within min(Interval, 5s) of Start, the next
// ones every Interval with ±5% jitter, so that monitors started together
// drift apart. After a failure that does not yet make the monitor down,
// the next check comes after RetryInterval (by default Interval/FailAfter)
// so that a failure is confirmed within about one Interval.
//
// Every check is bounded by the spec's Timeout, whatever the target does:
// a server that accepts and never answers, one that trickles its body (an
// http check reads at most MaxBody, 1 MiB, of it), a TLS handshake that
// stalls. An http check opens a fresh connection (no keep-alive), does not
// use proxies from the environment, and reads at most 64 KiB of headers.
// A target name that does not resolve is a failed check carrying the
// resolver's message ("lookup nope.invalid: no such host"). Error messages
// never quote the target URL, which may hold a secret; nor are headers
// logged.
//
// A tls check does the handshake itself (SNI from Host, else the target's
// host), then verifies the chain against Config.RootCAs at the Runner's
// clock, so that an untrusted or expired certificate is still described.
// It fails when the leaf has expired, does not verify (unless Insecure),
// or expires in fewer than CertMinDays days; the Detail says in how many.
//
// A push monitor has no probe. Push with its token records a passing
// result (or, with ok false, an explicit failure); when no push comes for
// Interval+Grace, a failure "no push for 5m30s" is recorded, and another
// each Interval while none comes. Tokens are 128 random bits, compared in
// constant time, kept across Set and restarts, and never logged; after a
// restart the clock of a push monitor starts again, so that the time the
// server was down is not held against the pusher.
//
// # States
//
// A monitor is pending until its first conclusion. FailAfter consecutive
// failures make it down (default 2 for probes, like Gatus' failure
// threshold, 1 for push), SuccessAfter consecutive successes make it up
// again (default 1); the first success makes a pending monitor up.
//
// Flapping is detected like Nagios does, on the up/down state after the
// thresholds: when it changed at least Config.FlapChanges times (default
// 4) within the last Config.FlapWindow results (default 20), the state is
// flapping; it stays so, while the up/down state is still tracked beneath,
// until at most FlapChanges/2 changes remain in the window, when the state
// becomes that up or down. The hysteresis keeps a monitor on the edge from
// flapping in and out of flapping.
//
// OnChange is called on every change of the visible state, outside the
// Runner's lock and, for one monitor, in order: whoever records a change
// while no delivery is in progress delivers the queue.
//
// # History
//
// A monitor keeps its last RecentSize (100) results and counts every
// result in per-minute buckets for the last 24 hours and per-hour buckets
// for the last 7 days, from which Status.Uptime reports the ratios of
// passing results over "24h" and "7d". A monitor checked every second for
// a week thus holds at most 1441+169 buckets and 100 results, each message
// clipped to 512 bytes.
//
// # Persistence
//
// With Config.StatePath set, the states, buckets, recent results, last
// pushes and push tokens are written as one JSON file (mode 0600;
// temporary file, fsync, rename): by Set, so that a new push token is
// durable before it is shown, every SaveEvery while something changed, and
// by Stop. New reads it back and Set gives each saved state to the monitor
// with the same name, kind, target and host. A file that does not decode
// is renamed to StatePath+".corrupt" with a warning and the monitors start
// afresh; saved values out of range are dropped or clamped.
package monitor
