package policy

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

const officeFile = `// Staff during office hours, from the office network.
@id("office")
permit (principal in Role::"staff", action, resource)
  when {
    context.weekday >= 1 && context.weekday <= 5 &&
    context.hour >= 8 && context.hour < 18 &&
    context.source_ip.isInRange(ip("10.0.0.0/8"))
  };

// example: allow user=ann roles=staff ip=10.1.2.3 hour=9 weekday=2
// example: deny  user=ann roles=staff ip=10.1.2.3 hour=20
// example: deny  user=ann roles=staff ip=192.0.2.1
//   example: allow user=ann roles=staff ip=10.0.0.1 weekday=6
// example: deny workload=ann ip=10.0.0.1
// example: allow user=ann roles=staff ip=10.0.0.1 app=other method=post path=/x trust=100
`

func TestTest(t *testing.T) {
	t.Parallel()
	got, err := Test("office.cedar", []byte(officeFile))
	if err != nil {
		t.Fatalf("Test = %v", err)
	}
	want := []struct {
		line      int
		want, got bool
	}{{10, true, true}, {11, false, false}, {12, false, false}, {13, true, false}, {14, false, false}, {15, true, true}}
	if len(got) != len(want) {
		t.Fatalf("Test = %d results %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line || g.Want != w.want || g.Got != w.got || g.Reason == "" || !strings.HasPrefix(g.Example, "allow") && !strings.HasPrefix(g.Example, "deny") {
			t.Errorf("Test result %d = %+v, want line %d want %v got %v", i, g, w.line, w.want, w.got)
		}
	}
}

func TestTestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want string
	}{
		{"no verdict", "// example: user=ann", `policy.cedar:3: example: starts with "user=ann"`},
		{"empty", "// example:", "policy.cedar:3: example: empty"},
		{"unknown key", "// example: allow user=ann colour=red", `unknown key "colour"`},
		{"no principal", "// example: allow method=GET", "exactly one of user= and workload="},
		{"two principals", "// example: allow user=a workload=b", "exactly one of user= and workload="},
		{"roles of a workload", "// example: deny workload=b roles=admin", "roles= is for users"},
		{"bad trust", "// example: allow user=a trust=high", `trust "high" is not a number from 0 to 100`},
		{"bad hour", "// example: allow user=a hour=24", `hour "24" is not a number from 0 to 23`},
		{"bad ip", "// example: allow user=a ip=10.0.0", `ip "10.0.0" is not an IP address`},
		{"bad method", "// example: allow user=a method=BREW", `method "BREW" is not one of`},
		{"relative path", "// example: allow user=a path=x", `path "x" does not start with /`},
		{"not key=value", "// example: allow user=a admin", `"admin" is not key=value`},
		{"key twice", "// example: allow user=a user=b", `key "user" is given twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := "permit (principal, action, resource);\n\n" + tc.line + "\n"
			got, err := Test("policy.cedar", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Test(%q) = %v, %v, want an invalid error containing %q", tc.line, got, err, tc.want)
			}
		})
	}
	if _, err := Test("policy.cedar", []byte("permit (principal, action, resource) when { context.nosuch };\n// example: allow user=a\n")); err == nil || !strings.Contains(err.Error(), "policy.cedar:1:53:") {
		t.Errorf("Test(unknown attribute) = %v, want the compile error", err)
	}
}

func TestExampleTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want time.Weekday
		hour int
	}{{"allow user=a", time.Monday, 12}, {"allow user=a weekday=0 hour=0", time.Sunday, 0}, {"allow user=a weekday=6 hour=23", time.Saturday, 23}} {
		ex, err := parseExample(tc.text)
		if err != nil {
			t.Fatalf("parseExample(%q) = %v", tc.text, err)
		}
		if ex.req.Time.Weekday() != tc.want || ex.req.Time.Hour() != tc.hour {
			t.Errorf("parseExample(%q).Time = %v, want a %v at %d:00", tc.text, ex.req.Time, tc.want, tc.hour)
		}
	}
}

// TestDocs checks every Cedar block of docs/policies.md: it is valid and
// its examples pass, so the documentation cannot drift from the schema.
func TestDocs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```cedar\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 4 {
		t.Fatalf("docs/policies.md has %d cedar blocks, want at least 4", len(blocks))
	}
	for i, b := range blocks {
		results, err := Test("docs-block.cedar", []byte(b[1]))
		if err != nil {
			t.Errorf("cedar block %d of docs/policies.md: %v\n%s", i+1, err, b[1])
			continue
		}
		for _, r := range results {
			if r.Want != r.Got {
				t.Errorf("cedar block %d of docs/policies.md, line %d: %q: got allow=%v: %s", i+1, r.Line, r.Example, r.Got, r.Reason)
			}
		}
	}
}
