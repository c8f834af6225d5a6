package runc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"noops/internal/runtime"
)

// The files of a bundle, Root/<id>/.
const (
	configFile     = "config.json"  // the OCI runtime configuration
	rootfsDir      = "rootfs"       // the overlay of the image's layers
	mountPointsDir = "mountpoints"  // the layer holding the mount points of runtime.Spec.Mounts
	sandboxFile    = "sandbox.json" // what the driver keeps: labels, log, times
	shimPidFile    = "shim.pid"     // the shim's pid, for Wait after a restart
	shimLogFile    = "shim.log"     // the shim's own diagnostics
	initPidFile    = "init.pid"     // written by runc: the sandbox's process
	runcLogFile    = "runc.log"     // runc's JSON log
	exitFile       = "exit.json"    // written by the shim when the process ended
)

// sandboxRecord is sandbox.json.
type sandboxRecord struct {
	ID      string            `json:"id"`
	Labels  map[string]string `json:"labels,omitempty"`
	Log     string            `json:"log"`
	Created time.Time         `json:"created"`
	Started time.Time         `json:"started,omitzero"`
}

// exitRecord is exit.json.
type exitRecord struct {
	Code      int       `json:"code"`
	Signal    string    `json:"signal,omitempty"`
	OOMKilled bool      `json:"oom_killed"`
	At        time.Time `json:"at"`
}

func (e exitRecord) exit() runtime.Exit {
	return runtime.Exit{Code: e.Code, Signal: e.Signal, OOMKilled: e.OOMKilled, At: e.At}
}

func recordOf(e runtime.Exit) exitRecord {
	return exitRecord{Code: e.Code, Signal: e.Signal, OOMKilled: e.OOMKilled, At: e.At}
}

// writeJSON writes v to path atomically: readers see the old file or the
// whole new one, never a part.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
	}
	return writeAtomic(path, append(b, '\n'))
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// readJSON decodes path into v; a missing file is os.ErrNotExist.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return nil
}

// readExit returns the exit recorded in bundle, if any.
func readExit(bundle string) (runtime.Exit, bool, error) {
	var rec exitRecord
	err := readJSON(filepath.Join(bundle, exitFile), &rec)
	if errors.Is(err, os.ErrNotExist) {
		return runtime.Exit{}, false, nil
	}
	if err != nil {
		return runtime.Exit{}, false, err
	}
	return rec.exit(), true, nil
}

// readPid reads a file holding a pid, as runc and the driver write them.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("reading pid from %s: %q is not a pid", path, b)
	}
	return pid, nil
}
