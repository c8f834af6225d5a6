package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"noops/internal/testenv/need"
)

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// demoApps are the apps `noops demo` deploys.
var demoApps = []string{"hello", "hello-static", "hello-node", "hello-python", "worker-procfile", "ledger", "orders", "slack-echo"}

// TestReadmeDemo runs `make demo` as README says, then the curl line it
// prints, then a few read commands, then stops the demo.
func TestReadmeDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	need.Sandbox(t)
	need.Program(t, "make")
	curl := need.Program(t, "curl")
	root := repoRoot(t)
	data := t.TempDir()
	env := append(os.Environ(), "NOOPS_DATA="+data, "NOOPS_HTTPS="+freePort(t), "NOOPS_HTTP=off",
		"NOOPS_STACK_DEBS="+filepath.Join(os.TempDir(), "noops-test-debs")) // Debian packages downloaded once per machine
	noops := filepath.Join(root, "bin", "noops")
	t.Cleanup(func() {
		cmd := exec.Command(noops, "demo", "--stop")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("noops demo --stop: %v\n%s", err, out)
		}
	})

	cmd := exec.Command("make", "demo")
	cmd.Dir, cmd.Env = root, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(data, "server.log"))
		t.Fatalf("make demo: %v\n%s\nserver log:\n%s\n%s", err, out, log, appState(noops, env))
	}
	t.Logf("make demo:\n%s", out)
	for _, app := range demoApps {
		if !strings.Contains(string(out), app+" v1 is live and answered") {
			t.Errorf("make demo output lacks the check of %s", app)
		}
	}
	if !strings.Contains(string(out), "billing v1 is live (not public: it takes events)") {
		t.Errorf("make demo output lacks billing, the function of the orders example")
	}

	try := regexp.MustCompile(`try:\s+(curl --cacert \S+ \S+)`).FindStringSubmatch(string(out))
	if try == nil {
		t.Fatalf("make demo printed no curl line")
	}
	args := strings.Fields(try[1])
	c := exec.Command(curl, append([]string{"-sS", "--fail"}, args[1:]...)...)
	body, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(body), "Hello from noops") {
		t.Fatalf("%s: %v\n%s", try[1], err, body)
	}

	ps := exec.Command(noops, "ps", "hello", "--json")
	ps.Env = env
	psOut, err := ps.Output()
	if err != nil {
		t.Fatalf("noops ps hello --json: %v", err)
	}
	var sandboxes []struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(psOut, &sandboxes); err != nil || len(sandboxes) != 1 || sandboxes[0].State != "healthy" {
		t.Errorf("noops ps hello --json = %s (%v), want one healthy sandbox", psOut, err)
	}

	// A command error exits non-zero with the cause and a hint.
	bad := exec.Command(noops, "releases", "nosuchapp")
	bad.Env = env
	badOut, err := bad.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(badOut), "noops: ") {
		t.Errorf("noops releases nosuchapp = %v %q, want exit 3 with a one-line cause", err, badOut)
	}
}

// appState is what `noops ps` and `noops logs` say of every app, for a
// failure's message: the cause of a failed demo is often in the app's log.
func appState(noops string, env []string) string {
	var b strings.Builder
	for _, app := range demoApps {
		for _, args := range [][]string{{"ps", app}, {"logs", app, "--lines", "40"}} {
			cmd := exec.Command(noops, args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			fmt.Fprintf(&b, "$ noops %s (%v)\n%s\n", strings.Join(args, " "), err, out)
		}
	}
	return b.String()
}
