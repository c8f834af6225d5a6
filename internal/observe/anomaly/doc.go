// Package anomaly flags buckets of a metric series (an app's request rate,
// error ratio or p95 latency) that leave their usual seasonal range, and
// fires when several recent buckets do.
//
// # Model
//
// A Detector sees one value per bucket (5 minutes by default). Each bucket
// belongs to a seasonal slot, by default its hour of the week in the
// configured Location (168 slots; Sunday 00:00-00:59 is slot 0), so that
// Monday 09:00 is compared with past Mondays at 09:00, in local time across
// daylight-saving changes.
//
// The consecutive buckets of one slot (an hour, with the default slot)
// form an occurrence of it. When an occurrence ends (the slot changes, or
// no observation came for an hour and at least 12 buckets), it is reduced
// to a summary: the median and the MAD (median absolute deviation) of its
// values, their highest and lowest, how many there were, and whether most
// of them were above or below the band ("shifted"). A slot keeps the summaries of its last
// Seasons occurrences (4 weeks by default), so a detector's state is
// bounded: Seasons summaries per slot, plus the open occurrence.
//
// A slot's baseline is robust: the expected value is the median of its
// occurrences' medians, and the spread combines the spread within an
// occurrence (the median of their MADs, left out for occurrences of fewer
// than 3 values) and across them (the MAD of their medians) as a root sum
// of squares. The MAD is floored by MinMAD (absolute) and MinRelMAD (times
// the expected value), so that a flat or quiet series does not alarm on
// noise, and scaled by 1.4826 to estimate a standard deviation (the
// scale). A value's robust z-score is (value - expected) / scale. The band
// is expected ± Threshold (4) × scale, widened to a scale past the median
// of the occurrences' highest and lowest values, so that a short event
// that recurs every week (a 15-minute batch job) is part of the band once
// most past weeks had it; in a normal slot the widening changes nothing,
// as those extremes lie well within 4 sigmas. A bucket deviates when its
// value is outside the band in the configured Direction. The baseline of a
// slot is cached and recomputed only when an occurrence ends, so that
// Observe costs O(Seasons) and allocates nothing in the steady state.
//
// A detector fires when at least K of the last N buckets deviated (3 of 4),
// so a single odd bucket never fires, and a sustained change fires on its
// third bucket. A bucket with no observation counts as not deviating: a gap
// in the data can end an episode, but never starts one.
//
// # Warm-up
//
// Until a slot has MinSamples past occurrences (2 weeks by default), it is
// warming up: the Verdict claims nothing seasonal (Expected and Score are
// NaN, WarmingUp is true) and the static thresholds in Config.Warmup apply
// instead, absolute (an error ratio above 5%) or relative to the median of
// the last day of values (a latency above 4 times it; the median needs at
// least 12 values). During warm-up values enter the history unclamped:
// static thresholds are too crude to say what is normal.
//
// # Incidents and level shifts
//
// After warm-up, a value enters its occurrence clamped to the band it was
// judged against, so a short spike cannot inflate a slot's median or MAD.
// An occurrence that was mostly outside the band on one side (a long
// incident) is left out of the baseline altogether, as long as MinSamples
// other occurrences remain. So an incident, even one that lasts a day or
// comes back at the same hour the next week, does not become the new
// normal. A lasting level shift, however, must: when the last Relearn
// occurrences of a slot (3 weeks by default) were all shifted to the same
// side, the slot's history is replaced by their unclamped summaries. A
// lasting shift therefore fires for Relearn weeks, one episode, and is then
// the baseline.
//
// # Bad input
//
// Observe ignores, and flags in Verdict.Ignored, a NaN or infinite value,
// a time in a bucket at or before the last one observed, a time outside
// the years 1700 to 2200, and a slot out of range; an ignored observation
// changes nothing. Its Verdict's Firing reports the window as of its time.
//
// # Persistence and sets
//
// Detector.MarshalJSON writes the configuration (all of it but a custom
// Slot function) and the state, a few tens of kilobytes at most;
// UnmarshalJSON restores it, into a zero Detector or into one made by New
// with a compatible configuration, and refuses malformed, oversized or
// incompatible input without changing the detector. Summaries are kept as
// float32 rounded to 5 significant digits, in memory as on disk, so a
// restored detector gives the same verdicts as one that kept running.
//
// A Set keeps one Detector per named series, each with its own Config, up
// to a bound (evicting the series observed least recently). Observing a
// series with a changed Config rebuilds its detector and keeps the history
// when the bucket width, slots and location are unchanged. A Set is safe
// for concurrent use; a Detector is not.
//
// The presets RequestRate, ErrorRatio and Latency hold the configurations
// measured in the package's tests on labelled synthetic series; the false
// alarm budget and recall are documented in docs/anomaly.md.
package anomaly
