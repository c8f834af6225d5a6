package build

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/image"
)

// Labels set on every app image. The base ones let rebase find the run
// image's layers: the bottom LabelBaseLayers layers are the run image
// whose manifest digest is LabelBaseImage.
const (
	LabelApp          = "dev.noops.app"
	LabelBuildpack    = "dev.noops.buildpack"
	LabelSourceDigest = "dev.noops.source-digest"
	LabelBuildTime    = "dev.noops.build-time"
	LabelStack        = "dev.noops.stack"
	LabelBaseLayers   = "dev.noops.base.layers"
	LabelBaseImage    = "dev.noops.base.image"
	LabelProcesses    = "dev.noops.processes"
)

// ProcessTypes are the process types noops knows; others are refused.
var ProcessTypes = []string{"web", "worker", "release"}

// export assembles the image: the run image, the launch layers in the
// order they were made, then the app layer under /app, owned by root so
// that the app cannot change its own files.
func export(req Request, bc *Context, run RunImage, buildpacks, digest string) (v1.Image, int, error) {
	procs, err := checkProcesses(bc.Processes, buildpacks)
	if err != nil {
		return nil, 0, err
	}
	launch, _, err := bc.layers.export()
	if err != nil {
		return nil, 0, err
	}
	app, err := image.LayerFileFromDir(bc.App, image.AppDir, bc.App+".tar.gz")
	if err != nil {
		return nil, 0, err
	}
	layers := append(launch, app)

	baseLayers, err := run.Image.Layers()
	if err != nil {
		return nil, 0, fmt.Errorf("reading the run image: %w", err)
	}
	baseDigest, err := run.Image.Digest()
	if err != nil {
		return nil, 0, fmt.Errorf("reading the run image: %w", err)
	}
	rcf, err := run.Image.ConfigFile()
	if err != nil {
		return nil, 0, fmt.Errorf("reading the run image: %w", err)
	}
	main := procs["web"]
	if len(main.Command) == 0 {
		main = procs[firstType(procs)]
	}
	procJSON, err := json.Marshal(procs)
	if err != nil {
		return nil, 0, fmt.Errorf("encoding processes: %w", err)
	}
	port := strconv.Itoa(req.Port)
	wd := main.WorkingDir
	if wd == "" {
		wd = image.AppDir
	}
	labels := maps.Clone(rcf.Config.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, map[string]string{
		LabelApp:          req.App,
		LabelBuildpack:    buildpacks,
		LabelSourceDigest: digest,
		LabelBuildTime:    req.Now.UTC().Format(time.RFC3339),
		LabelStack:        run.Stack,
		LabelBaseLayers:   strconv.Itoa(len(baseLayers)),
		LabelBaseImage:    baseDigest.String(),
		LabelProcesses:    string(procJSON),
	})
	cfg := v1.Config{
		User:         image.NonRootUser,
		Entrypoint:   main.Command,
		WorkingDir:   wd,
		Env:          imageEnv(rcf.Config.Env, main.Env, port),
		ExposedPorts: map[string]struct{}{port + "/tcp": {}},
		Labels:       labels,
	}
	img, err := image.Extend(run.Image, cfg, req.Now, layers...)
	return img, len(layers), err
}

// imageEnv is the run image's env, then the process's, with /app on PATH
// and PORT set by the platform.
func imageEnv(base []string, proc map[string]string, port string) []string {
	env := map[string]string{}
	var order []string
	put := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range base {
		k, v, _ := strings.Cut(kv, "=")
		put(k, v)
	}
	if env["PATH"] == "" {
		put("PATH", "/usr/local/bin:/usr/bin:/bin")
	}
	put("PATH", image.AppDir+":"+env["PATH"])
	for _, k := range sortedKeys(proc) {
		if k != "PATH" && k != "PORT" {
			put(k, proc[k])
		}
	}
	put("PORT", port)
	out := make([]string, len(order))
	for i, k := range order {
		out[i] = k + "=" + env[k]
	}
	return out
}

// checkProcesses refuses a build that declared nothing to run, an unknown
// process type or an empty command.
func checkProcesses(procs map[string]Process, buildpacks string) (map[string]Process, error) {
	if len(procs) == 0 {
		return nil, errkind.WithHint(errkind.Invalid, fmt.Errorf("buildpacks %s found nothing to run", buildpacks),
			"declare it in a Procfile, e.g. \"web: <command>\"")
	}
	for typ, p := range procs {
		known := false
		for _, t := range ProcessTypes {
			known = known || t == typ
		}
		if !known {
			return nil, errkind.Errorf(errkind.Invalid, "process type %q is not one noops runs: use %s", typ, strings.Join(ProcessTypes, ", "))
		}
		if len(p.Command) == 0 || p.Command[0] == "" {
			return nil, errkind.Errorf(errkind.Invalid, "process %s has no command", typ)
		}
		if strings.Contains(p.Command[0], "/") && !path.IsAbs(p.Command[0]) {
			return nil, errkind.Errorf(errkind.Invalid, "process %s: command %q must be a name on PATH or an absolute path in the image (/app/…)", typ, p.Command[0])
		}
	}
	if _, ok := procs["web"]; !ok {
		if _, ok := procs["worker"]; !ok {
			return nil, errkind.Errorf(errkind.Invalid, "buildpacks %s declared neither a web nor a worker process", buildpacks)
		}
	}
	return procs, nil
}

func firstType(procs map[string]Process) string {
	for _, t := range ProcessTypes {
		if _, ok := procs[t]; ok {
			return t
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
