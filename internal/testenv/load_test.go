package testenv

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// TestLoadCommand runs `noops load` against an app of the platform: every
// request succeeds, the report has latencies and a replica count per
// second, and an app that does not exist is refused.
func TestLoadCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := Start(t, Options{})
	deployOK(t, e, copyApp(t), "loaded")
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(Binary(t), args...)
		cmd.Env = append(os.Environ(), "NOOPS_DATA="+e.Data)
		return cmd.Output()
	}
	out, err := run("load", "loaded", "--rate", "40", "--duration", "3s", "--json")
	if err != nil {
		t.Fatalf("noops load: %v\n%s", err, out)
	}
	var rep struct {
		Requests uint64  `json:"requests"`
		Success  float64 `json:"success"`
		P50Ms    float64 `json:"p50_ms"`
		P99Ms    float64 `json:"p99_ms"`
		MaxMs    float64 `json:"max_ms"`
		Errors   []string
		Replicas []struct {
			Ready int `json:"ready"`
		} `json:"replicas"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("noops load --json printed %q: %v", out, err)
	}
	if rep.Requests < 100 || rep.Success != 1 || len(rep.Errors) != 0 {
		t.Errorf("report = %+v, want about 120 requests, all successful", rep)
	}
	if rep.P50Ms <= 0 || rep.P99Ms < rep.P50Ms || rep.MaxMs < rep.P99Ms {
		t.Errorf("latencies p50 %.2f p99 %.2f max %.2f ms: not ordered", rep.P50Ms, rep.P99Ms, rep.MaxMs)
	}
	if len(rep.Replicas) < 2 || rep.Replicas[0].Ready != 1 {
		t.Errorf("replica samples = %+v, want one a second, one replica ready", rep.Replicas)
	}
	if out, err := run("load", "nosuchapp", "--duration", "1s"); err == nil {
		t.Errorf("noops load of an app that does not exist succeeded: %s", out)
	}
}
