// Package ratelimit enforces the gateway's rate-based rules: AWS-WAF-style
// limits on how many requests one aggregation key (a client address, a
// signed-in identity, a header or cookie value, or a combination of up to
// five of these) may send in a sliding window of one to ten minutes.
//
// A Limiter is built once from the manifest's rules (New) and asked about
// every request (Limiter.Check). Check counts the request in every rule whose
// scope-down (path prefixes, methods) matches and returns a Verdict naming
// the first non-count rule whose limit the request took the key over. The
// package reads no clock: the caller passes the time, so tests and replays
// are deterministic.
//
// # Immediate enforcement
//
// AWS WAF counts requests out of band and acts on the counts up to 30
// seconds late, so a burst of thousands of requests passes before the block
// starts. Here the count is updated inline, under the key's lock, and the
// request that takes the count from Limit to Limit+1 is the first one
// refused: with Limit 50 the 50th request passes and the 51st does not.
// Refused requests still count, as on AWS, so a client that keeps hammering
// while refused stays refused until its window has fallen back below the
// limit; Verdict.First marks the request that crossed the limit, so the
// caller can log the event or start a Rule.Ban once.
//
// # Sliding windows of 60 sub-buckets
//
// Each key of a rule holds a ring of 60 counters, one per 1/60 of the
// rule's window (one second for a 60 s window, ten for 600 s), and their
// running sum. The count is the sum over the 60 buckets ending with the one
// that holds now; a request is forgotten when its bucket leaves the ring,
// between Window-Window/60 and Window after it arrived. So any span of
// 59/60 of the window lets at most Limit requests of a key through, where
// fixed windows let 2×Limit through in an instant across their boundary;
// and the counters cost a fixed 256 bytes per key, where exact timestamps
// would cost O(Limit). Advancing the ring is amortised O(1): only the
// buckets that aged out since the key was last seen are cleared.
//
// # Memory and concurrency
//
// Each rule keeps its keys in up to 64 shards chosen by a seeded hash of the
// key, each with its own mutex, so concurrent requests from different clients
// rarely contend. Client-address keys use netip.Addr as the map key, so the
// common case allocates nothing; other keys are looked up by the request's
// own strings (or a stack buffer for composite keys) and copied only when a
// new key is stored. A rule holds at most MaxKeys keys (WithMaxKeys, default
// 100 000); when a shard is full, a CLOCK sweep evicts a key that has not
// been seen since the hand last passed it, which approximates evicting the
// key idle longest at O(1) cost. Limiter.Sweep, run periodically by the
// caller, drops keys whose windows are empty. Counters live in a slice with
// no pointers, so the garbage collector does not scan them.
package ratelimit
