package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"noops/internal/errkind"
	"noops/internal/gateway/trust"
	"noops/internal/spec"
)

// ExampleResult is the outcome of one example comment of a policy file.
type ExampleResult struct {
	Line    int    // 1-based line of the comment
	Want    bool   // the example expects the request to be allowed
	Got     bool   // the policy allowed it
	Example string // the example as written after "example:"
	Reason  string // the decision's reason
}

// Test compiles a policy file as an app's "policy: <file>" with min_trust 0
// and runs the examples in its comments:
//
//	// example: allow user=alice roles=admin method=GET path=/admin trust=30
//
// A policy that does not compile, or a malformed example, is an
// errkind.Invalid error naming the line.
func Test(file string, src []byte) ([]ExampleResult, error) {
	const defaultApp = "app"
	set, err := compileFile(defaultApp, spec.Access{Policy: file}, file, src)
	if err != nil {
		return nil, err
	}
	examples, err := parseExamples(file, src)
	if err != nil {
		return nil, err
	}
	sets := map[string]*Set{defaultApp: set}
	results := make([]ExampleResult, 0, len(examples))
	for _, ex := range examples {
		s, ok := sets[ex.req.App]
		if !ok {
			if s, err = compileFile(ex.req.App, spec.Access{Policy: file}, file, src); err != nil {
				return nil, err
			}
			sets[ex.req.App] = s
		}
		d := s.Authorize(ex.req)
		results = append(results, ExampleResult{Line: ex.line, Want: ex.want, Got: d.Allow, Example: ex.text, Reason: d.Reason})
	}
	return results, nil
}

type example struct {
	line int
	text string
	want bool
	req  Request
}

// exampleKeys are the keys an example may set, in the order the error
// message lists them.
var exampleKeys = []string{"user", "workload", "roles", "method", "path", "trust", "ip", "hour", "weekday", "mtls", "device", "app"}

// parseExamples finds the "// example:" comments of src and parses them.
func parseExamples(file string, src []byte) ([]example, error) {
	var out []example
	var errs []error
	for i, line := range strings.Split(string(src), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "//")
		if !ok {
			continue
		}
		text, ok := strings.CutPrefix(strings.TrimSpace(rest), "example:")
		if !ok {
			continue
		}
		text = strings.TrimSpace(text)
		ex, err := parseExample(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: example: %w", file, i+1, err))
			continue
		}
		ex.line, ex.text = i+1, text
		out = append(out, ex)
	}
	if len(errs) > 0 {
		return nil, errkind.E(errkind.Invalid, errors.Join(errs...))
	}
	return out, nil
}

// parseExample parses "allow user=alice roles=admin method=GET ...".
func parseExample(text string) (example, error) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return example{}, errors.New("empty: want allow or deny, then key=value pairs")
	}
	ex := example{req: Request{
		Action:   "GET",
		App:      "app",
		Path:     "/",
		SourceIP: netip.AddrFrom4([4]byte{127, 0, 0, 1}),
	}}
	switch fields[0] {
	case "allow":
		ex.want = true
	case "deny":
	default:
		return example{}, fmt.Errorf("starts with %q: want allow or deny", fields[0])
	}
	hour, weekday := 12, 1
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return example{}, fmt.Errorf("%q is not key=value", f)
		}
		if !slices.Contains(exampleKeys, k) {
			return example{}, fmt.Errorf("unknown key %q (want %s)", k, strings.Join(exampleKeys, ", "))
		}
		if seen[k] {
			return example{}, fmt.Errorf("key %q is given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "user", "workload":
			if v == "" {
				return example{}, fmt.Errorf("%s= needs a name", k)
			}
			ex.req.Principal.Kind, ex.req.Principal.Name = k, v
		case "roles":
			if v != "" {
				ex.req.Principal.Roles = strings.Split(v, ",")
			}
		case "method":
			ex.req.Action = strings.ToUpper(v)
			if !slices.Contains(httpMethods, ex.req.Action) {
				return example{}, fmt.Errorf("method %q is not one of %s", v, strings.Join(httpMethods, ", "))
			}
		case "path":
			if !strings.HasPrefix(v, "/") {
				return example{}, fmt.Errorf("path %q does not start with /", v)
			}
			ex.req.Path = v
		case "trust":
			var n int
			if n, err = intIn(k, v, 0, trust.Max); err == nil {
				ex.req.Trust = trust.Score{Total: n}
			}
		case "ip":
			if ex.req.SourceIP, err = netip.ParseAddr(v); err != nil {
				err = fmt.Errorf("ip %q is not an IP address", v)
			}
		case "hour":
			hour, err = intIn(k, v, 0, 23)
		case "weekday":
			weekday, err = intIn(k, v, 0, 6)
		case "mtls":
			ex.req.MTLS = v
		case "device":
			ex.req.Device = v
		case "app":
			if v == "" {
				return example{}, errors.New("app= needs a name")
			}
			ex.req.App = v
		}
		if err != nil {
			return example{}, err
		}
	}
	if seen["user"] == seen["workload"] {
		return example{}, errors.New("give exactly one of user= and workload=")
	}
	if seen["roles"] && seen["workload"] {
		return example{}, errors.New("roles= is for users; a workload has none")
	}
	// 2024-01-07 is a Sunday: weekday 0.
	ex.req.Time = time.Date(2024, time.January, 7+weekday, hour, 0, 0, 0, time.UTC)
	return ex, nil
}

func intIn(key, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %q is not a number from %d to %d", key, v, lo, hi)
	}
	return n, nil
}
