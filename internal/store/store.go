// Package store is the platform's state: apps, their immutable releases,
// the sandboxes that run them and the append-only audit log. Store is the
// interface every part of the platform uses; store/sqlite is the embedded
// implementation and store/storetest the conformance suite that every
// implementation (a PostgreSQL one later) must pass.
package store

import (
	"context"
	"encoding/json"
	"time"
)

// Status is where a release is in its life. It is the only part of a
// release that ever changes.
type Status string

// The release statuses.
const (
	StatusPending    Status = "pending"    // built, rolling out
	StatusLive       Status = "live"       // serving
	StatusSuperseded Status = "superseded" // was live, replaced by a later one
	StatusFailed     Status = "failed"     // never became live (Reason says why)
)

// App is a deployed application.
type App struct {
	Name     string
	Created  time.Time
	Release  int // live release number; 0 when none
	Replicas int // desired replicas of the live release
}

// Release is an immutable, numbered build of an app plus its configuration.
// Numbers start at 1 per app and are never reused, even after a failure.
type Release struct {
	App          string
	Number       int
	Image        string          // image digest, "sha256:…"
	SourceDigest string          // digest of the uploaded source tree
	Buildpack    string          // the buildpack that built it
	Config       json.RawMessage // run configuration (spec.Run as JSON)
	Env          map[string]string
	Created      time.Time
	Status       Status
	Reason       string // what made it ("deploy", "rollback from 3", "env set K") or why it failed
	// SBOM is the image's inventory (sbom.Encode), recorded by
	// CreateRelease. GetRelease and ListReleases leave it out (it can be
	// large): ReleaseSBOM reads it.
	SBOM []byte
}

// Sandbox is the record of one replica, kept so that a restarted server can
// adopt the sandboxes that outlived the previous one.
type Sandbox struct {
	ID       string
	App      string
	Release  int
	State    string // starting, healthy, unhealthy, exited, backoff, crashloop, stopping
	Addr     string // ip:port the gateway proxies to
	Restarts int
	LastExit string
	Created  time.Time
	Updated  time.Time
}

// AuditEntry is one record of the append-only audit log.
type AuditEntry struct {
	Seq    int64 // assigned by the store, increasing
	Time   time.Time
	Actor  string // who: "uid:0 pid:1234"
	Action string // what: "POST /v1/apps/{app}/deploy"
	Target string // on what: "app:hello"
	Status int    // HTTP status of the outcome
	Detail string // never a secret value
	// Hash chains the entry to the one before it (AuditHash); set by
	// AppendAudit, "" for entries recorded before the chain existed.
	Hash string
}

// Event is something the platform did or saw on its own, not asked by an
// API call (those are audited): a crash loop, an OOM kill, a scale by the
// autoscaler. Events are kept when their app is deleted, like the audit.
type Event struct {
	Seq     int64 // assigned by the store, increasing
	Time    time.Time
	App     string // "" for the platform itself
	Kind    string // "crashloop", "oom", "start-failed", "scaled", ...
	Message string // for people; never a secret value
}

// EventQuery selects events: those after sequence number Since, of App
// (all for ""), of one of Kinds (all when empty), with From <= Time < To
// (either zero: unbounded); at most Limit.
type EventQuery struct {
	App      string
	Since    int64
	Kinds    []string
	From, To time.Time
	Limit    int
}

// Kinds of the events that mark a change (deploy markers).
const (
	KindDeploy   = "deploy"
	KindRollback = "rollback"
	KindConfig   = "config"
	KindRebase   = "rebase"
	KindScale    = "scale"
	KindBan      = "ban"
)

// The bounds of ListAudit's limit: zero or less means DefaultAuditLimit,
// more than MaxAuditLimit means MaxAuditLimit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10000
)

// Store is the platform's state. Every method is safe for concurrent use.
// Errors are classified with errkind: NotFound for a missing app, release
// or sandbox, Conflict for a duplicate, Invalid for a malformed value; a
// refused call changes nothing.
//
// Times are kept to the nanosecond and returned in UTC; a zero time given
// to a method that records one (Created, Updated, Time) means now. An
// empty Env or Config reads back as nil. Lists are never nil.
// store/storetest pins these rules down.
type Store interface {
	Identities
	Bans

	ListApps(ctx context.Context) ([]App, error) // by name
	GetApp(ctx context.Context, name string) (App, error)
	// CreateApp adds an app; Conflict if one of that name exists, Invalid
	// for an empty name, negative replicas or a non-zero Release (a new
	// app has no live release).
	CreateApp(ctx context.Context, a App) (App, error)
	// SetReplicas records the desired replica count of an app.
	SetReplicas(ctx context.Context, name string, replicas int) (App, error)
	// DeleteApp removes an app with its releases and sandbox records. The
	// audit log keeps its history. An app created again under the same
	// name is a new app: its releases are numbered from 1 again.
	DeleteApp(ctx context.Context, name string) error

	// CreateRelease records a new release and gives it the app's next
	// number (r.Number is ignored). Numbers start at 1 and are never
	// reused, even when a release fails. Status "" means pending; a new
	// release is pending or failed, never live or superseded (only Promote
	// makes a release live). Image must be set and Config, when set, must
	// be JSON.
	CreateRelease(ctx context.Context, r Release) (Release, error)
	GetRelease(ctx context.Context, app string, number int) (Release, error)
	ListReleases(ctx context.Context, app string) ([]Release, error) // newest first; NotFound for a missing app
	// ReleaseSBOM returns what CreateRelease recorded in Release.SBOM; nil
	// for a release without one.
	ReleaseSBOM(ctx context.Context, app string, number int) ([]byte, error)
	// SetReleaseStatus changes a release's status and reason; nothing else
	// of a release can change. It cannot make a release live: that is
	// Promote's job, which also records it on the app.
	SetReleaseStatus(ctx context.Context, app string, number int, s Status, reason string) error
	// Promote makes a release live in one transaction: the app's previous
	// live release becomes superseded, this one live (with reason), and the
	// app records it with its replica count. Any release of the app may be
	// promoted (a rollback promotes a superseded one); promoting the live
	// release again updates its reason and the replica count.
	Promote(ctx context.Context, app string, number, replicas int, reason string) (App, error)
	// DeleteReleases removes old releases of an app (with their SBOMs),
	// all of them or, when one is refused, none: Conflict for the app's
	// live release, a pending one (a rollout is using it) or one that
	// still has sandbox records; NotFound for a missing app or a number
	// the app does not have. Numbering goes on: a deleted release's
	// number is never given again. An empty list changes nothing. This is
	// the only way a release is removed other than DeleteApp.
	DeleteReleases(ctx context.Context, app string, numbers []int) error

	// ListSandboxes lists an app's sandboxes (all of them for app ""), by
	// creation; NotFound for a missing app.
	ListSandboxes(ctx context.Context, app string) ([]Sandbox, error)
	PutSandbox(ctx context.Context, s Sandbox) error    // insert or replace by ID; its app and release must exist
	DeleteSandbox(ctx context.Context, id string) error // deleting an unknown ID is not an error

	// AppendAudit appends an entry and returns it with its sequence number
	// and its Hash, chained to the previous entry's (e.Hash is ignored).
	// Action must be set. Entries are never changed or removed.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// ListAudit returns up to limit entries with Seq > since, oldest first.
	// See DefaultAuditLimit and MaxAuditLimit for the bounds of limit.
	ListAudit(ctx context.Context, since int64, limit int) ([]AuditEntry, error)

	// AppendEvent appends an event and returns it with its sequence
	// number; Kind must be set. Events are never changed or removed.
	AppendEvent(ctx context.Context, e Event) (Event, error)
	// ListEvents returns up to q.Limit events that match q, oldest first;
	// the limit is bounded as ListAudit's.
	ListEvents(ctx context.Context, q EventQuery) ([]Event, error)

	Close() error
}
