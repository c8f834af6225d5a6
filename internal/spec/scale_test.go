package spec

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestParseScale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring; "" means success
		want    Scale
		initial int // run.replicas after defaults
	}{
		{name: "defaults", yaml: "run: { scale: {} }\n", initial: 1,
			want: Scale{Max: 10, Concurrency: 100, Idle: Duration(time.Minute), Window: Duration(time.Minute)}},
		{name: "full", yaml: "run:\n  scale: { min: 2, max: 5, concurrency: 50, idle: 90s, retain: 5m, window: 30s }\n", initial: 2,
			want: Scale{Min: 2, Max: 5, Concurrency: 50, Idle: Duration(90 * time.Second), Retain: Duration(5 * time.Minute), Window: Duration(30 * time.Second)}},
		{name: "max follows a large min", yaml: "run: { scale: { min: 20 } }\n", initial: 20,
			want: Scale{Min: 20, Max: 20, Concurrency: 100, Idle: Duration(time.Minute), Window: Duration(time.Minute)}},
		{name: "replicas and scale", yaml: "run: { replicas: 2, scale: { max: 3 } }\n", wantErr: "run.replicas and run.scale: set one"},
		{name: "max below min", yaml: "run: { scale: { min: 4, max: 2 } }\n", wantErr: "run.scale.max: 2 is below run.scale.min (4)"},
		{name: "negative min", yaml: "run: { scale: { min: -1 } }\n", wantErr: "run.scale.min: -1 is out of range"},
		{name: "max too large", yaml: "run: { scale: { max: 1000 } }\n", wantErr: "run.scale.max: 1000 is out of range (1-100)"},
		{name: "concurrency", yaml: "run: { scale: { concurrency: -5 } }\n", wantErr: "run.scale.concurrency: -5 is out of range"},
		{name: "idle too short", yaml: "run: { scale: { idle: 10ms } }\n", wantErr: "run.scale.idle: 10ms is out of range (1s-24h0m0s)"},
		{name: "window too short", yaml: "run: { scale: { window: 1s } }\n", wantErr: "run.scale.window: 1s is out of range (6s-1h0m0s)"},
		{name: "negative retain", yaml: "run: { scale: { retain: -1s } }\n", wantErr: "run.scale.retain: -1s is out of range"},
		{name: "bare number", yaml: "run:\n  scale:\n    idle: 60\n", wantErr: "line 3: \"60\" is not a duration"},
		{name: "duration not a scalar", yaml: "run:\n  scale:\n    idle: [1s]\n", wantErr: "line 3: a duration must be written like"},
		{name: "unknown field", yaml: "run:\n  scale:\n    minimum: 1\n", wantErr: "line 3: field minimum not found in section scale"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse([]byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tc.yaml, err, tc.wantErr)
				}
				if !errkind.Is(err, errkind.Invalid) {
					t.Errorf("Parse(%q) error kind = %v, want invalid", tc.yaml, errkind.Of(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tc.yaml, err)
			}
			if m.Run.Scale == nil || *m.Run.Scale != tc.want {
				t.Errorf("run.scale of %q = %+v, want %+v", tc.yaml, m.Run.Scale, tc.want)
			}
			if m.Run.Replicas != tc.initial {
				t.Errorf("run.replicas of %q = %d, want %d", tc.yaml, m.Run.Replicas, tc.initial)
			}
		})
	}
}

// TestScaleJSON checks that run.scale survives the JSON a release keeps its
// run config in, and that a manifest without one has none.
func TestScaleJSON(t *testing.T) {
	t.Parallel()
	for _, y := range []string{"", "run: { scale: { min: 0, max: 3, idle: 1m30s, retain: 10s, window: 6s } }\n"} {
		m, err := Parse([]byte(y))
		if err != nil {
			t.Fatalf("Parse(%q) = %v", y, err)
		}
		b, err := json.Marshal(m.Run)
		if err != nil {
			t.Fatal(err)
		}
		var back Run
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if (back.Scale == nil) != (m.Run.Scale == nil) || back.Scale != nil && *back.Scale != *m.Run.Scale {
			t.Errorf("run.scale of %q through JSON %s = %+v, want %+v", y, b, back.Scale, m.Run.Scale)
		}
	}
	var d Duration
	for _, bad := range []string{`60`, `"soon"`, `"`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Duration from JSON %s: no error", bad)
		}
	}
}
