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

// DeployEvent is one line of the NDJSON stream a deploy answers with.
type DeployEvent struct {
	Type    string   `json:"type"`              // "stage", "log", "result", "error"
	Stage   string   `json:"stage,omitempty"`   // for "stage": receiving, building, exporting, releasing, rolling-out
	Line    string   `json:"line,omitempty"`    // for "log"
	Release *Release `json:"release,omitempty"` // for "result"
	URL     string   `json:"url,omitempty"`     // for "result"
	Error   *Error   `json:"error,omitempty"`   // for "error"
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
}
