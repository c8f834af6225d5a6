package supervisor

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/runtime"
	"noops/internal/spec"
)

// The process types an image may declare (a Procfile's). Web sandboxes
// are health-checked over HTTP and routed; worker sandboxes run unrouted
// and count as ready once they have stayed up for Config.WorkerSettle;
// the release process runs once, to completion, before a new release
// starts any sandbox, and a failure refuses the release.
const (
	Web     = "web"
	Worker  = "worker"
	Release = "release"
)

// LabelProcesses is the image label that says what each process type
// runs, as build writes it (build.LabelProcesses): JSON
// {"web":{"Command":[...],"WorkingDir":"","Env":{...}},"worker":{...}}.
// An image without it runs one web process, its entrypoint.
const LabelProcesses = "dev.noops.processes"

// process is what a sandbox of one process type runs.
type process struct {
	Args []string // Args[0] is absolute in the image or a name runc finds on the image's PATH
	Cwd  string   // absolute
	Env  []string // the image's env with the process's own on top, before sandboxEnv's layers
}

// labelProcess is one entry of LabelProcesses.
type labelProcess struct {
	Command    []string
	WorkingDir string
	Env        map[string]string
}

// processes reads what an image runs, by process type, from its config.
// Errors are errkind.Invalid: the image, not the platform, is at fault.
func processes(cfg v1.Config) (map[string]process, error) {
	raw, ok := cfg.Labels[LabelProcesses]
	if !ok {
		args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
		if len(args) == 0 {
			return nil, errkind.Errorf(errkind.Invalid, "the image has neither an entrypoint nor a %s label: nothing to run", LabelProcesses)
		}
		return map[string]process{Web: {Args: args, Cwd: cfg.WorkingDir, Env: append([]string{}, cfg.Env...)}}, nil
	}
	var declared map[string]labelProcess
	if err := json.Unmarshal([]byte(raw), &declared); err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "reading the image's %s label: %v", LabelProcesses, err)
	}
	out := make(map[string]process, len(declared))
	for _, typ := range sortedTypes(declared) {
		p := declared[typ]
		switch typ {
		case Web, Worker, Release:
		default:
			return nil, errkind.Errorf(errkind.Invalid, "the image declares process type %q: noops runs %s, %s and %s", typ, Web, Worker, Release)
		}
		if len(p.Command) == 0 || p.Command[0] == "" {
			return nil, errkind.Errorf(errkind.Invalid, "the image's %s process has no command", typ)
		}
		if strings.Contains(p.Command[0], "/") && !path.IsAbs(p.Command[0]) {
			return nil, errkind.Errorf(errkind.Invalid, "the image's %s process: command %q must be a name on PATH or an absolute path", typ, p.Command[0])
		}
		cwd := p.WorkingDir
		if cwd == "" {
			cwd = cfg.WorkingDir
		}
		if cwd != "" && !path.IsAbs(cwd) {
			return nil, errkind.Errorf(errkind.Invalid, "the image's %s process: working folder %q is not absolute", typ, cwd)
		}
		out[typ] = process{Args: append([]string{}, p.Command...), Cwd: cwd, Env: processEnv(cfg.Env, p.Env)}
	}
	if _, ok := out[Web]; !ok {
		if _, ok := out[Worker]; !ok {
			return nil, errkind.Errorf(errkind.Invalid, "the image's %s label declares neither a %s nor a %s process", LabelProcesses, Web, Worker)
		}
	}
	return out, nil
}

// processEnv is the image's env with a process's own on top, in sorted
// order; as in the image, PATH and PORT are the image's and the
// platform's, not a process's.
func processEnv(image []string, own map[string]string) []string {
	out := append([]string{}, image...)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, k := range sortedKeys(own) {
		if k == "PATH" || k == "PORT" || k == "" {
			continue
		}
		if i, ok := index[k]; ok {
			out[i] = k + "=" + own[k]
			continue
		}
		index[k] = len(out)
		out = append(out, k+"="+own[k])
	}
	return out
}

func sortedTypes(m map[string]labelProcess) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// webCount is how many web sandboxes a release runs: the app's replica
// count, or none when its image has no web process.
func webCount(replicas int, procs map[string]process) int {
	if _, ok := procs[Web]; !ok {
		return 0
	}
	return max(replicas, 0)
}

// workerCount is how many worker sandboxes a release runs: run.workers,
// or when unset 1 if the image has a worker process. Asking for workers
// of an image without one is an error rather than silently none.
func workerCount(run spec.Run, procs map[string]process) (int, error) {
	_, has := procs[Worker]
	if run.Workers == nil {
		if has {
			return 1, nil
		}
		return 0, nil
	}
	n := *run.Workers
	if n > 0 && !has {
		return 0, errkind.WithHint(errkind.Invalid,
			fmt.Errorf("run.workers is %d but the image declares no worker process", n),
			"add a worker to the Procfile, or remove run.workers from "+spec.FileName)
	}
	return n, nil
}

// sandboxID names a new sandbox of app's release rel running process type
// proc: "<app>-<rel>-<hex>" for web (as before process types existed),
// "<app>-<rel>-<type>-<hex>" for the others, with the type shortened to
// its first letter when the full word would pass runtime.MaxIDLen (a
// 30-character app name at release 1000 and above). ProcessOf reads the
// type back: the store's sandbox rows have no field for it.
func sandboxID(app string, rel int, proc string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	prefix := app + "-" + strconv.Itoa(rel)
	if proc == Web {
		return prefix + "-" + suffix
	}
	id := prefix + "-" + proc + "-" + suffix
	if len(id) > runtime.MaxIDLen {
		id = prefix + "-" + proc[:1] + "-" + suffix
	}
	return id
}

// ProcessOf is the process type of the sandbox id (Web, Worker or
// Release), read from the id as sandboxID made it. In a web sandbox's id
// the part before the random suffix is the release number; in the others
// it is the type, so an app name holding "worker" is not mistaken for one.
func ProcessOf(id string) string {
	parts := strings.Split(id, "-")
	if len(parts) < 3 {
		return Web
	}
	switch parts[len(parts)-2] {
	case Worker, "w":
		return Worker
	case Release, "r":
		return Release
	}
	return Web
}
