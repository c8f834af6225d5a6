// Package apitype holds the wire types of the admin API, shared by the
// server (internal/api) and its clients (internal/apiclient). It is a leaf:
// plain data, no behaviour, no imports from noops.
package apitype

import (
	"encoding/json"
	"time"
)

// Error is the body of every non-2xx response.
type Error struct {
	Kind    string `json:"kind"`           // errkind name: invalid, not_found, conflict, permission, unavailable, internal
	Message string `json:"message"`        // one line for the user
	Hint    string `json:"hint,omitempty"` // what to do about it
}

// App is an application and what runs it.
type App struct {
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Release  int       `json:"release"` // live release number; 0 when none
	Replicas int       `json:"replicas"`
	URL      string    `json:"url"`
	Healthy  int       `json:"healthy"` // replicas currently passing health checks
}

// Release is an immutable, numbered build of an app plus its configuration.
type Release struct {
	App          string          `json:"app"`
	Number       int             `json:"number"`
	Image        string          `json:"image"`
	SourceDigest string          `json:"source_digest,omitempty"`
	Buildpack    string          `json:"buildpack,omitempty"`
	Config       json.RawMessage `json:"config,omitempty"`
	EnvKeys      []string        `json:"env_keys,omitempty"` // names only; values through the env endpoint
	Created      time.Time       `json:"created"`
	Status       string          `json:"status"`
	Reason       string          `json:"reason,omitempty"`
}

// Sandbox is one running (or restarting) replica of a release.
type Sandbox struct {
	ID       string    `json:"id"`
	App      string    `json:"app"`
	Release  int       `json:"release"`
	Process  string    `json:"process"` // web or worker
	State    string    `json:"state"`
	Addr     string    `json:"addr,omitempty"`
	Pid      int       `json:"pid,omitempty"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// Status is the server's view of itself.
type Status struct {
	Version string `json:"version"`
	Domain  string `json:"domain"`
	HTTPS   string `json:"https"` // listening address
	HTTP    string `json:"http,omitempty"`
	Data    string `json:"data"`
	Pid     int    `json:"pid"`
}

// DeployEvent is one line of the NDJSON stream that long operations
// answer with: deploy, rebase, stack build and update.
type DeployEvent struct {
	Type        string       `json:"type"`                   // "stage", "log", "result", "error"
	Stage       string       `json:"stage,omitempty"`        // for "stage": receiving, detect, restore, build, export, releasing, rolling-out…
	Line        string       `json:"line,omitempty"`         // for "log"
	Release     *Release     `json:"release,omitempty"`      // for a deploy's "result"
	URL         string       `json:"url,omitempty"`          // for a deploy's "result"
	Stack       *Stack       `json:"stack,omitempty"`        // for a stack build's "result"
	StackUpdate *StackUpdate `json:"stack_update,omitempty"` // for a stack update's "result"
	Rebase      *Rebase      `json:"rebase,omitempty"`       // for a rebase's "result"
	Error       *Error       `json:"error,omitempty"`        // for "error"
}

// StackImage is one image of a stack; zero when never built.
type StackImage struct {
	Digest   string    `json:"digest,omitempty"`
	Lock     string    `json:"lock,omitempty"` // digest of the lock: the exact package versions
	Packages int       `json:"packages"`
	Size     int64     `json:"size"` // compressed bytes
	Created  time.Time `json:"created"`
}

// Stack is a stack and its images.
type Stack struct {
	Name  string     `json:"name"`
	Run   StackImage `json:"run"`
	Build StackImage `json:"build"` // zero for a stack without a build image
}

// PackageChange is an OS package that a stack update or rebase changes:
// From is "" when added, To is "" when removed.
type PackageChange struct {
	Package string `json:"package"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
}

// StackUpdate is what `noops stack update` did.
type StackUpdate struct {
	Stack    Stack           `json:"stack"`
	Run      []PackageChange `json:"run_changes"`
	Build    []PackageChange `json:"build_changes"`
	Affected []string        `json:"affected_apps"` // apps on an older run image: `noops rebase` moves them
}

// RebaseRequest asks for a rebase.
type RebaseRequest struct {
	Force bool `json:"force"` // rebase even when the new run image removes packages
}

// Rebase is what a rebase did.
type Rebase struct {
	App       string          `json:"app"`
	Release   *Release        `json:"release,omitempty"`
	Unchanged bool            `json:"unchanged"` // already on the current run image: nothing was done
	Changes   []PackageChange `json:"changes"`
}

// ScaleRequest sets the desired replica count.
type ScaleRequest struct {
	Replicas int `json:"replicas"`
}

// RollbackRequest picks the release to return to; 0 means the one before the live one.
type RollbackRequest struct {
	To int `json:"to"`
}

// EnvRequest changes an app's environment; it makes a new release.
type EnvRequest struct {
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
}

// Env is an app's live environment.
type Env struct {
	App     string            `json:"app"`
	Release int               `json:"release"`
	Env     map[string]string `json:"env"`
}

// AuditEntry is one record of the append-only audit log.
type AuditEntry struct {
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Status int       `json:"status"`
	Detail string    `json:"detail,omitempty"`
	Hash   string    `json:"hash,omitempty"` // chains the entry to the previous one
}

// Event is something the platform did or saw on its own: a crash loop,
// an OOM kill, a start that failed, a scale by the autoscaler.
type Event struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	App     string    `json:"app,omitempty"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// GCReport is what `noops gc` removed.
type GCReport struct {
	Releases      map[string][]int  `json:"releases"`       // releases deleted, per app
	Skipped       map[string]string `json:"skipped"`        // apps left alone this time, and why
	Images        int               `json:"images"`         // image manifests removed
	Blobs         int               `json:"blobs"`          // blobs removed
	Layers        int               `json:"layers"`         // unpacked layer folders removed
	Freed         int64             `json:"freed"`          // bytes of images and layers
	CachesRemoved []string          `json:"caches_removed"` // build caches trimmed
	CacheFreed    int64             `json:"cache_freed"`    // their bytes
}

// ImageDeployRequest deploys an image from the noops registry.
type ImageDeployRequest struct {
	Image string `json:"image"`          // registry.<domain>/<repo>:<tag>, <repo>:<tag> or sha256:…
	Port  int    `json:"port,omitempty"` // default: the image's one exposed port, else 8080
	// Access is "public" or "authenticated"; "" keeps the app's (the
	// default for a new app: authenticated).
	Access string `json:"access,omitempty"`
}

// Registry says how to reach the registry endpoint.
type Registry struct {
	Host  string `json:"host"`
	User  string `json:"user"`
	Token string `json:"token"` // the password; secret
}

// Scaling is an app's replica counts, its autoscaler's view and its cold
// starts (GET /v1/apps/{app}/scaling).
type Scaling struct {
	Desired    int           `json:"desired"` // web replicas it should have
	Ready      int           `json:"ready"`   // web replicas serving
	Autoscaled bool          `json:"autoscaled"`
	Scale      *ScaleSection `json:"scale,omitempty"`
	Stable     float64       `json:"stable_concurrency"` // average requests in flight over the stable window
	Panic      float64       `json:"panic_concurrency"`  // over the panic window
	Panicking  bool          `json:"panicking"`
	ColdStarts ColdStarts    `json:"cold_starts"`
}

// ScaleSection is an app's run.scale.
type ScaleSection struct {
	Min         int    `json:"min"`
	Max         int    `json:"max"`
	Concurrency int    `json:"concurrency"`
	Idle        string `json:"idle"`
	Retain      string `json:"retain"`
	Window      string `json:"window"`
}

// ColdStarts summarises an app's cold starts: requests held while it was
// at zero replicas, from arrival to the response's first byte.
type ColdStarts struct {
	Count uint64  `json:"count"` // since the server started
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}
