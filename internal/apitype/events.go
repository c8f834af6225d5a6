package apitype

import (
	"net/http"
	"time"
)

// PublishRequest publishes an event (POST /v1/topics/{topic}/events).
// Data is text; DataBase64 carries binary data instead.
type PublishRequest struct {
	Data         string `json:"data,omitempty"`
	DataBase64   []byte `json:"data_base64,omitempty"`
	ContentType  string `json:"content_type,omitempty"`
	Type         string `json:"type,omitempty"`
	Source       string `json:"source,omitempty"`
	ID           string `json:"id,omitempty"`
	PartitionKey string `json:"partition_key,omitempty"`
	TraceParent  string `json:"traceparent,omitempty"`
}

// PublishResult is the published event's identity.
type PublishResult struct {
	ID          string `json:"id"`
	Topic       string `json:"topic"`
	TraceParent string `json:"traceparent"`
}

// CloudEvent is an event of the bus as the API shows it.
type CloudEvent struct {
	ID           string    `json:"id"`
	Source       string    `json:"source"`
	Type         string    `json:"type"`
	Topic        string    `json:"topic"`
	Time         time.Time `json:"time"`
	ContentType  string    `json:"datacontenttype,omitempty"`
	PartitionKey string    `json:"partitionkey,omitempty"`
	TraceParent  string    `json:"traceparent,omitempty"`
	Data         []byte    `json:"data,omitempty"`
}

// DeadLetter is an event an app's function did not take.
type DeadLetter struct {
	Seq        uint64     `json:"seq"`
	App        string     `json:"app"`
	Event      CloudEvent `json:"event"`
	Origin     string     `json:"origin"`
	Error      string     `json:"error"`
	Attempts   int        `json:"attempts"`
	FailedAt   time.Time  `json:"failed_at"`
	Invocation string     `json:"invocation,omitempty"`
}

// ReplayRequest replays dead letters (POST /v1/apps/{app}/dlq/replay):
// the listed ones, or all.
type ReplayRequest struct {
	Seqs []uint64 `json:"seqs,omitempty"`
	All  bool     `json:"all,omitempty"`
}

// ReplayResult counts the replayed dead letters.
type ReplayResult struct {
	Replayed int `json:"replayed"`
}

// InvokeRequest invokes an app (POST /v1/apps/{app}/invoke).
type InvokeRequest struct {
	Method string      `json:"method,omitempty"` // default POST
	Path   string      `json:"path,omitempty"`   // default "/"
	Header http.Header `json:"header,omitempty"`
	Data   string      `json:"data,omitempty"`
	Async  bool        `json:"async,omitempty"`
}

// InvokeResult is the app's answer to a synchronous invocation, or the
// queued invocation of an asynchronous one.
type InvokeResult struct {
	Status     int         `json:"status,omitempty"`
	Header     http.Header `json:"header,omitempty"`
	Body       []byte      `json:"body,omitempty"`
	Invocation *Invocation `json:"invocation,omitempty"`
}

// Invocation is an asynchronous invocation.
type Invocation struct {
	ID       string    `json:"id"`
	App      string    `json:"app"`
	Status   string    `json:"status"`
	Method   string    `json:"method"`
	Path     string    `json:"path"`
	Attempts int       `json:"attempts"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	TraceID  string    `json:"trace_id,omitempty"`
	Response *struct {
		Status    int         `json:"status"`
		Header    http.Header `json:"header,omitempty"`
		Body      []byte      `json:"body,omitempty"`
		Truncated bool        `json:"truncated,omitempty"`
	} `json:"response,omitempty"`
	Error string `json:"error,omitempty"`
}
