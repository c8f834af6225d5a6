package shield

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"noops/internal/gateway"
	"noops/internal/gateway/ban"
	"noops/internal/gateway/waf"
	"noops/internal/spec"
)

// crsSetup is the CRS regression setup (rule 900005 of the CRS's
// tests/regression/README), less ctl:ruleEngine=DetectionOnly (the
// route is in detect mode) and ctl:ruleRemoveById=910000 (CRS 4 has no
// rule 910000).
const crsSetup = `SecAction "id:900005,phase:1,nolog,pass,t:none,\
setvar:tx.blocking_paranoia_level=4,setvar:tx.detection_paranoia_level=4,\
setvar:tx.crs_validate_utf8_encoding=1,\
setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,\
setvar:tx.max_num_args=255,setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535"`

// crsManifest is the app's WAF configuration: detect mode, so every rule
// runs and nothing is refused, paranoia 4 and response inspection.
var crsManifest = spec.Config{WAF: spec.WAF{Mode: "detect", Paranoia: 4, Responses: true}}

// crsMinPassRate is the share of the suite (less skips) that must pass.
const crsMinPassRate = 99.5

// crsOverrides are the tests that fail because of what the platform is,
// not what the WAF does: the request never reaches the WAF, or the test
// expects the answer of the web server it was written against (Apache).
// An overridden test still runs; one that passes is a stale override and
// fails the suite. Keep each to one test and one line.
var crsOverrides = map[string]string{}

// crsSkips are tests not run at all.
var crsSkips = map[string]string{}

// crsHost rewrites the suite's Host: localhost (go-ftw's default target)
// to the app's host: the gateway routes by Host, and a bare "localhost"
// names no app.
func crsHost(h string) string {
	switch {
	case h == "localhost":
		return "app.localhost"
	case strings.HasPrefix(h, "localhost:"):
		return "app." + h
	}
	return h
}

type crsOutcome int

const (
	crsPassed crsOutcome = iota
	crsFailed
	crsOverridden
	crsSkipped
)

type crsResult struct {
	outcome crsOutcome
	stage   int
	why     string // what did not match
	class   string // how far the request got
	want    string
	got     string
}

// TestCRS runs the OWASP CRS regression suite (the go-ftw tests of the
// coraza-coreruleset module) through the real gateway, over TLS on
// loopback, and compares the rules each request matched, read from the
// gateway's security events, with what the test expects.
func TestCRS(t *testing.T) {
	if testing.Short() {
		t.Skip("the CRS regression suite sends ~4,700 requests through the gateway: skipped under -short")
	}
	began := time.Now()
	tests, err := loadFTW()
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) < 4000 {
		t.Fatalf("read %d CRS tests, want the whole suite (~4,700)", len(tests))
	}
	eng, err := waf.New(waf.Config{Directives: crsSetup})
	if err != nil {
		t.Fatal(err)
	}

	// One gateway per domain the suite's Host headers name, so that a
	// test's Host reaches the WAF unchanged (but for localhost).
	domains := map[string]map[string]bool{"localhost": {}}
	for _, tc := range tests {
		for _, st := range tc.Stages {
			raw, err := st.Input.rawRequest(crsHost)
			if err != nil {
				continue
			}
			if app, dom, ok := routable(hostOf(raw)); ok && dom != "localhost" {
				if domains[dom] == nil {
					domains[dom] = map[string]bool{}
				}
				domains[dom][app] = true
			}
		}
	}
	watch := newReqWatch()
	platforms := map[string]*platform{}
	for dom, apps := range domains {
		platforms[dom] = start(t, options{
			upstream: albedo(),
			manifest: crsManifest,
			engine:   eng,
			// The suite's long URIs, many arguments and slow bodies are
			// for the WAF to judge; a body that never comes is cut short.
			limits: gateway.Limits{MaxHeaderBytes: 1 << 20, MaxHeaders: 1000, MaxURI: 1 << 20,
				HeaderTimeout: 5 * time.Second, BodyTimeout: 5 * time.Second},
			rules:  map[ban.Trigger]ban.Rule{ban.WAF: {}, ban.Login: {}, ban.Garbage: {}, ban.Slow: {}, ban.Flood: {}},
			flood:  -1,
			domain: dom,
			apps:   slices.Sorted(maps.Keys(apps)),
			log:    slog.New(watch),
		})
	}
	pick := func(raw []byte) *platform {
		if _, dom, ok := routable(hostOf(raw)); ok && platforms[dom] != nil {
			return platforms[dom]
		}
		return platforms["localhost"]
	}

	results := make([]crsResult, len(tests))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(tests) {
					return
				}
				results[i] = runCRSTest(tests[i], pick, watch)
			}
		})
	}
	wg.Wait()

	var passed, failed, overridden, skipped int
	classes := map[string]int{}
	seen := map[string]bool{}
	var report []string
	for i, tc := range tests {
		seen[tc.id] = true
		r := &results[i]
		if r.outcome == crsSkipped {
			skipped++
			continue
		}
		_, over := crsOverrides[tc.id]
		switch {
		case r.outcome == crsPassed && over:
			passed++
			t.Errorf("override %s is stale: the test passes (remove it)", tc.id)
		case r.outcome == crsPassed:
			passed++
		case over:
			overridden++
			classes[r.class]++
		default:
			failed++
			classes[r.class]++
			report = append(report, fmt.Sprintf("%s stage %d: %s [%s]; want %s; got %s", tc.id, r.stage, r.why, r.class, r.want, r.got))
		}
	}
	for id := range crsOverrides {
		if !seen[id] {
			t.Errorf("override %s names no test of the suite", id)
		}
	}
	for id := range crsSkips {
		if !seen[id] {
			t.Errorf("skip %s names no test of the suite", id)
		}
	}
	total := len(tests)
	rate := 100 * float64(passed) / float64(total-skipped)
	t.Logf("CRS regression suite through the gateway: %d tests, %d passed, %d failed, %d overridden, %d skipped: %.2f%% pass (in %s)",
		total, passed, failed, overridden, skipped, rate, time.Since(began).Round(100*time.Millisecond))
	for _, c := range slices.Sorted(maps.Keys(classes)) {
		t.Logf("  not passed, %s: %d", c, classes[c])
	}
	if n := len(watch.warns); n > 0 {
		t.Logf("the gateway logged %d warnings, the first: %s", n, watch.warns[0])
	}
	slices.Sort(report)
	for _, l := range report {
		t.Logf("FAIL %s", l)
	}
	if failed > 0 {
		t.Errorf("%d CRS tests failed and are not overridden", failed)
	}
	if rate < crsMinPassRate {
		t.Errorf("pass rate %.2f%%, want at least %.1f%%", rate, crsMinPassRate)
	}
}

// runCRSTest runs the stages of a test in order; the test passes when
// every stage does.
func runCRSTest(tc *ftwTest, pick func([]byte) *platform, watch *reqWatch) crsResult {
	if _, ok := crsSkips[tc.id]; ok {
		return crsResult{outcome: crsSkipped}
	}
	_, over := crsOverrides[tc.id]
	failed := crsFailed
	if over {
		failed = crsOverridden
	}
	for i, st := range tc.Stages {
		raw, err := st.Input.rawRequest(crsHost)
		if err != nil {
			return crsResult{outcome: failed, stage: i, why: err.Error(), class: "test input", want: want(st.Output)}
		}
		p, method := pick(raw), requestMethod(raw)
		r := send(p, watch, raw, method)
		why := judge(st.Output, r)
		if why != "" && st.Output.RetryOnce != nil && *st.Output.RetryOnce {
			r = send(p, watch, raw, method)
			why = judge(st.Output, r)
		}
		if why != "" {
			got := fmt.Sprintf("status %d, rules %v", r.status, r.rules)
			if r.err != nil {
				got = "error " + r.err.Error()
			}
			return crsResult{outcome: failed, stage: i, why: why, class: where(r), want: want(st.Output), got: got}
		}
	}
	return crsResult{outcome: crsPassed}
}

// want describes a stage's expected output.
func want(o ftwOutput) string {
	var parts []string
	if o.ExpectError != nil && *o.ExpectError {
		parts = append(parts, "an error")
	}
	if o.Status != 0 {
		parts = append(parts, fmt.Sprintf("status %d", o.Status))
	}
	if len(o.Log.ExpectIDs) > 0 {
		parts = append(parts, fmt.Sprintf("rules %v", o.Log.ExpectIDs))
	}
	if len(o.Log.NoExpectIDs) > 0 {
		parts = append(parts, fmt.Sprintf("not rules %v", o.Log.NoExpectIDs))
	}
	if o.Log.MatchRegex != "" {
		parts = append(parts, fmt.Sprintf("log ~ %q", o.Log.MatchRegex))
	}
	if o.Log.NoMatchRegex != "" {
		parts = append(parts, fmt.Sprintf("log !~ %q", o.Log.NoMatchRegex))
	}
	if o.ResponseContains != "" {
		parts = append(parts, fmt.Sprintf("response ~ %q", o.ResponseContains))
	}
	if len(parts) == 0 {
		return "anything"
	}
	return strings.Join(parts, ", ")
}
