// Package errkind classifies errors once, where they arise, so that the
// edges (the HTTP API and the CLI) can map them to status codes and exit
// codes from one table without inspecting messages.
package errkind

import (
	"errors"
	"fmt"
)

// Kind is the class of an error as a caller should treat it.
type Kind int

// The kinds. Internal is the zero value: an error nobody classified is a bug
// or an unexpected failure, never the user's fault.
const (
	Internal        Kind = iota // unexpected failure inside the platform
	Invalid                     // the request or input is malformed or not acceptable
	NotFound                    // the named thing does not exist
	Conflict                    // the request clashes with the current state
	Permission                  // the caller may not do this
	Unavailable                 // a dependency or resource is missing or exhausted; retry may work
	Unauthenticated             // the caller has not proven who they are (sign in)
	TooMany                     // the caller asked too often; retry later
)

var names = [...]string{"internal", "invalid", "not_found", "conflict", "permission", "unavailable", "unauthenticated", "too_many"}

func (k Kind) String() string {
	if int(k) >= 0 && int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Parse returns the Kind named s (as produced by String), or Internal.
func Parse(s string) Kind {
	for i, n := range names {
		if n == s {
			return Kind(i)
		}
	}
	return Internal
}

// Error is an error with a kind. Hint, when set, tells the user what to do.
type Error struct {
	Kind Kind
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// E wraps err with kind k. A nil err yields nil.
func E(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err}
}

// Errorf formats a message like fmt.Errorf and classifies it as k.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// WithHint classifies err as k and attaches a hint for the user.
func WithHint(k Kind, err error, hint string) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err, Hint: hint}
}

// Of returns the kind of the outermost classified error in err's chain, or
// Internal when none is classified.
func Of(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is classified as k.
func Is(err error, k Kind) bool { return err != nil && Of(err) == k }

// HintOf returns the first hint in err's chain, or "".
func HintOf(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Hint != "" {
			return e.Hint
		}
		err = e.Err
	}
	return ""
}
