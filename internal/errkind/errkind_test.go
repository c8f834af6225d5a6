package errkind_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"noops/internal/errkind"
)

var allKinds = []errkind.Kind{
	errkind.Internal, errkind.Invalid, errkind.NotFound,
	errkind.Conflict, errkind.Permission, errkind.Unavailable,
	errkind.Unauthenticated, errkind.TooMany,
}

func TestParseStringRoundTrip(t *testing.T) {
	t.Parallel()
	seen := map[string]errkind.Kind{}
	for _, k := range allKinds {
		s := k.String()
		if prev, ok := seen[s]; ok {
			t.Errorf("Kind(%d).String() = %q, same as Kind(%d)", int(k), s, int(prev))
		}
		seen[s] = k
		if got := errkind.Parse(s); got != k {
			t.Errorf("Parse(%q) = %v, want %v", s, got, k)
		}
	}
}

func TestStringAndParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind errkind.Kind
		want string
	}{
		{"internal", errkind.Internal, "internal"},
		{"invalid", errkind.Invalid, "invalid"},
		{"not found", errkind.NotFound, "not_found"},
		{"conflict", errkind.Conflict, "conflict"},
		{"permission", errkind.Permission, "permission"},
		{"unavailable", errkind.Unavailable, "unavailable"},
		{"out of range", errkind.Kind(42), "kind(42)"},
		{"negative", errkind.Kind(-1), "kind(-1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.kind.String(); got != tc.want {
				t.Errorf("Kind(%d).String() = %q, want %q", int(tc.kind), got, tc.want)
			}
		})
	}
}

func TestParseUnknown(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "bogus", "NotFound", "not-found", "kind(42)", " invalid"} {
		if got := errkind.Parse(s); got != errkind.Internal {
			t.Errorf("Parse(%q) = %v, want %v", s, got, errkind.Internal)
		}
	}
}

func TestOfIsHintOf(t *testing.T) {
	t.Parallel()
	base := errors.New("base cause")
	tests := []struct {
		name     string
		err      error
		wantKind errkind.Kind
		wantHint string
	}{
		{"nil", nil, errkind.Internal, ""},
		{"plain error", base, errkind.Internal, ""},
		{"plain wrapped", fmt.Errorf("doing x: %w", base), errkind.Internal, ""},
		{"E", errkind.E(errkind.NotFound, base), errkind.NotFound, ""},
		{"Errorf", errkind.Errorf(errkind.Conflict, "app %q busy", "a"), errkind.Conflict, ""},
		{"WithHint", errkind.WithHint(errkind.Unavailable, base, "retry later"), errkind.Unavailable, "retry later"},
		{
			"classified under fmt %w",
			fmt.Errorf("outer: %w", fmt.Errorf("middle: %w", errkind.WithHint(errkind.Permission, base, "use sudo"))),
			errkind.Permission, "use sudo",
		},
		{
			"outermost kind wins",
			errkind.E(errkind.Invalid, fmt.Errorf("ctx: %w", errkind.E(errkind.NotFound, base))),
			errkind.Invalid, "",
		},
		{
			"outermost hint wins",
			errkind.WithHint(errkind.Invalid, fmt.Errorf("ctx: %w", errkind.WithHint(errkind.NotFound, base, "inner hint")), "outer hint"),
			errkind.Invalid, "outer hint",
		},
		{
			"inner hint shows through a hintless outer kind",
			errkind.E(errkind.Conflict, fmt.Errorf("ctx: %w", errkind.WithHint(errkind.NotFound, base, "inner hint"))),
			errkind.Conflict, "inner hint",
		},
		{
			"inner hint through several hintless layers",
			fmt.Errorf("a: %w", errkind.E(errkind.Unavailable, fmt.Errorf("b: %w", errkind.E(errkind.Invalid,
				fmt.Errorf("c: %w", errkind.WithHint(errkind.NotFound, base, "deep hint")))))),
			errkind.Unavailable, "deep hint",
		},
		{
			"Errorf with %w keeps inner hint",
			errkind.Errorf(errkind.Invalid, "parsing: %w", errkind.WithHint(errkind.NotFound, base, "inner")),
			errkind.Invalid, "inner",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := errkind.Of(tc.err); got != tc.wantKind {
				t.Errorf("Of(%v) = %v, want %v", tc.err, got, tc.wantKind)
			}
			if got := errkind.HintOf(tc.err); got != tc.wantHint {
				t.Errorf("HintOf(%v) = %q, want %q", tc.err, got, tc.wantHint)
			}
			for _, k := range allKinds {
				want := tc.err != nil && k == tc.wantKind
				if got := errkind.Is(tc.err, k); got != want {
					t.Errorf("Is(%v, %v) = %v, want %v", tc.err, k, got, want)
				}
			}
		})
	}
}

func TestNilStaysNil(t *testing.T) {
	t.Parallel()
	if err := errkind.E(errkind.Invalid, nil); err != nil {
		t.Errorf("E(Invalid, nil) = %v, want nil", err)
	}
	if err := errkind.WithHint(errkind.Invalid, nil, "hint"); err != nil {
		t.Errorf("WithHint(Invalid, nil, hint) = %v, want nil", err)
	}
}

func TestErrorKeepsMessageAndCause(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf("opening x: %w", fs.ErrNotExist)
	tests := []struct {
		name string
		err  error
		msg  string
	}{
		{"E", errkind.E(errkind.NotFound, cause), "opening x: file does not exist"},
		{"WithHint", errkind.WithHint(errkind.NotFound, cause, "create it"), "opening x: file does not exist"},
		{"Errorf %w", errkind.Errorf(errkind.NotFound, "loading: %w", cause), "loading: opening x: file does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.msg {
				t.Errorf("Error() = %q, want %q (the hint is not part of the message)", got, tc.msg)
			}
			if !errors.Is(tc.err, fs.ErrNotExist) {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = false, want true", tc.err)
			}
		})
	}
}
