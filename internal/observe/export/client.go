package export

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// kind is a signal.
type kind int

const (
	kindTraces kind = iota
	kindMetrics
	kindLogs
	numKinds
)

func (k kind) String() string { return [...]string{"traces", "metrics", "logs"}[k] }

// partial is what a receiver reported in a partial-success reply.
type partial struct {
	rejected int64
	msg      string
}

// client sends one export request, a serialized Export*ServiceRequest.
// Its errors are *exportError, or the context's error once ctx ends.
type client interface {
	export(ctx context.Context, k kind, payload []byte) (partial, error)
	close()
}

// class says what to do with a batch a request failed for.
type class int

const (
	// retryable: retry after a backoff (OTLP's retryable failures).
	retryable class = iota
	// refused: the receiver refuses us, not the data (401, 403, 404,
	// a redirect; gRPC Unauthenticated, PermissionDenied, Unimplemented).
	// A configuration mistake: the batch is kept and retried every
	// MaxBackoff until someone fixes it, or the queue overflows.
	refused
	// permanent: the receiver will never take this batch; it is dropped.
	permanent
)

// exportError is a failed request. Its message names the endpoint only
// by scheme and host.
type exportError struct {
	class class
	after time.Duration // the receiver asked us to wait this long
	msg   string
}

func (e *exportError) Error() string { return e.msg }

// maxErrText bounds the part of a receiver's message kept in an error.
const maxErrText = 200

// clip makes a receiver's text fit for an error message: valid UTF-8, one
// line, at most maxErrText bytes.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxErrText {
		s = strings.ToValidUTF8(s[:maxErrText], "") + "…"
	}
	return s
}

// quoteMsg renders a receiver's message for an error: ": \"…\"" or "".
func quoteMsg(s string) string {
	if s = clip(s); s == "" {
		return ""
	}
	return ": " + strconv.Quote(s)
}

func newExportError(c class, after time.Duration, format string, args ...any) *exportError {
	return &exportError{class: c, after: after, msg: fmt.Sprintf(format, args...)}
}
