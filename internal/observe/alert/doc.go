// Package alert evaluates alert rules over the platform's telemetry and
// sends their alerts, grouped and deduplicated, through internal/notify.
//
// # Model
//
// It is Prometheus's alerting rules and Alertmanager's grouping in one
// small engine, without Alertmanager's routing trees, silences and
// inhibitions.
//
// A Rule names a Source by its Kind (a PromQL expression over the metric
// store, a log pattern counted over a window, an uptime monitor, an
// anomaly score) and a condition: Op and Threshold. Every Interval the
// engine asks each rule's Source for samples; each sample whose value
// meets the condition is one alert, identified by its labels (the
// sample's, the rule's, alertname, severity and, for an app's rule, app)
// and their fingerprint, computed as Alertmanager does. A new alert is
// pending; once its condition has held for the rule's For it fires (For 0
// fires at once). A pending alert whose condition stops is forgotten
// without a notification; a firing one resolves. So does an alert whose
// series disappears, and every alert of a rule that SetRules removes.
//
// A Source error changes nothing: the rule's alerts stay as they were, so
// that an unreachable store neither resolves nor fires anything. The
// error is logged once until the rule evaluates again, and shown by
// Rules and on the rule's alerts in Alerts. A rule has at most
// Config.MaxAlertsPerRule alerts (the alerts already active are kept
// first, the rest dropped and counted), and the labels a Source gives
// are bounded in number and size.
//
// # Notifications
//
// The firing alerts of one rule and one app (the "app" label) form a
// group, as in Alertmanager with group_by [alertname, app]. A new group
// waits GroupWait, so that alerts firing together go out together, then
// notifies; after that it notifies at most every GroupInterval when it
// changed (an alert fired or resolved), and, unchanged, again every
// Repeat of the rule as a reminder. A notification carries all the
// group's firing alerts and those resolved since the last one, with their
// end time; after a group's last alert is announced resolved the group is
// gone. Alerts that fire and resolve before their group's first
// notification are never announced.
//
// Each notification is a notify.Event of Kind "alert" with the group in
// Event.Alert (Alertmanager's webhook fields), a Title like "[FIRING:2]
// HighErrorRate app=shop" or "[RESOLVED] HighErrorRate app=shop", the
// rule's Severity, and a Key unique to the notification (the group, when
// it formed, the status and the notification's number), so that notify's
// dedup window never swallows a change, a reminder or a resolve: the
// deduplication of an unchanged group is the engine's. notify queues and
// retries while a sink is down.
//
// When alerts start firing, Config.Markers is asked for the app's changes
// (deploys, rollbacks) since an hour before they became active; up to
// three, newest first, are kept with the alert and sent as its
// "changed_since" annotation: "deploy release 12 at 14:02 UTC, 3m before".
//
// # Restarts
//
// With Config.StatePath set, the active alerts, the groups' notification
// state and the latest resolved alerts are saved as JSON (written to a
// temporary file, fsynced and renamed) after each evaluation that changed
// them, and at Stop. New restores them, and the first SetRules matches
// them to the rules: an alert still firing after a restart is not
// announced again before its reminder, one whose condition stopped while
// the engine was down resolves at the first evaluation, and the alerts of
// rules no longer configured resolve. A state file that does not decode is
// moved aside (.corrupt) and the engine starts empty.
//
// # Compared with Prometheus and Alertmanager
//
// Prometheus evaluates "expr > threshold" and sends the resulting series
// to Alertmanager, which groups, deduplicates, waits, repeats and routes
// them to receivers, each with its own retry. Here the comparison is the
// engine's (so that log counts, monitors and anomaly scores work the same
// way as PromQL), grouping is fixed to rule and app, every notification
// goes to every notify sink, and notify provides the queues, the retries
// and the spool. What reaches a webhook is the same JSON as Alertmanager
// sends (notify.Alertmanager), so receivers written for it work as is.
// There are no silences, inhibitions or routes; a resolved notification
// is always sent (send_resolved: true).
package alert
