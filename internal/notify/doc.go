// Package notify delivers typed platform notifications (security events
// such as a WAF block, a ban, an unban or a failed challenge; alerts) to
// notification sinks: generic JSON webhooks, Alertmanager-compatible
// webhooks and Slack-compatible incoming webhooks.
//
// # Design
//
// Notify is called from the gateway's request path, so it never blocks and
// never does I/O: it drops events whose Kind+Key was seen within the dedup
// window, copies the event, and appends it to an in-memory queue per sink
// (bounded by Config.MaxQueue; when full the oldest waiting event is
// dropped and counted).
//
// Each sink has one delivery goroutine that sends its queue in order. A
// send is bounded by Config.Timeout. A failure is retried after an
// exponential backoff with jitter (Config.Backoff doubling up to
// Config.MaxBackoff, or the receiver's Retry-After when it gives one); a
// failure wrapped with Permanent (an HTTP 4xx other than 408 and 429) drops
// the event. A slow or failing sink holds up only its own queue.
//
// With Config.Spool set, the queues survive a restart. Each sink has an
// append-only JSON-lines file in the spool directory, named after a hash of
// the sink's address so that no secret appears in it. One writer goroutine
// appends a line {"seq":N,"event":{…}} for every accepted event and a line
// {"ack":N} once event N is delivered or dropped; the request path only
// hands it records. New reads each file, keeps the events without an ack
// (skipping, with a warning, a corrupt line such as the half-written last
// line of a crash) and rewrites the file with just those. The writer
// truncates a file whenever its queue is empty and rewrites it from the
// queue when it has grown well past it, so a file stays within a small
// multiple of MaxQueue lines. Appends are not fsynced; Stop rewrites every
// file from its queue and fsyncs it, so a clean stop loses nothing and a
// crash loses at most what the page cache held.
//
// Delivery is at least once: an event whose send was cut short by Stop, or
// whose ack was not yet written at a crash, is sent again after New. The
// dedup window lives in memory only and starts empty after a restart.
//
// An alert event (Kind "alert", from internal/observe/alert) carries its
// group of alerts in Event.Alert, bounded like the rest of the event. The
// Alertmanager sink posts it as Alertmanager's webhook body (version "4"),
// so that receivers written for Prometheus take noops alerts unchanged;
// it posts any other event as a group of one firing alert. The Slack sink
// lists the alerts with their summaries and what changed before they
// started; the Webhook sink adds the group to its body as "alert". The
// spool stores the group with the event; lines written before it existed
// read as events without one.
//
// Sink names, which appear in logs and Stats, are "webhook scheme://host",
// "alertmanager scheme://host" and "slack host": webhook URLs (Slack's in
// particular) are secrets and are never logged, nor put in errors.
package notify
