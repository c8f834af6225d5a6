package runc

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/runtime"
	"noops/internal/runtime/logfile"
)

// shimConfig is what the driver tells a shim on its command line.
type shimConfig struct {
	id, bundle, runc, runcRoot, log string
	create                          bool // runc create: the process waits for runc start
}

// logDrainTimeout bounds how long the shim waits for the output pipes to
// end after the sandbox's process has exited.
const logDrainTimeout = 5 * time.Second

// RunShim is the shim of one sandbox, run as `noops shim ARGS` by the
// driver in its own session with fd 3 the pipe on which Start waits for
// its report. It runs the sandbox with runc, reports the sandbox's pid (or
// runc's error), copies the sandbox's output into its log, and when the
// sandbox's process exits records how in exit.json and returns. Its own
// diagnostics go to shim.log in the bundle.
func RunShim(args []string) error {
	var c shimConfig
	fs := flag.NewFlagSet("shim", flag.ContinueOnError)
	fs.StringVar(&c.id, "id", "", "sandbox id")
	fs.StringVar(&c.bundle, "bundle", "", "bundle folder")
	fs.StringVar(&c.runc, "runc", "runc", "runc binary")
	fs.StringVar(&c.runcRoot, "runc-root", "", "runc state folder")
	fs.StringVar(&c.log, "log", "", "log file of the sandbox's output")
	fs.BoolVar(&c.create, "create", false, "create the sandbox and leave its process waiting for `runc start`")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("shim: %w", err)
	}
	if c.id == "" || c.bundle == "" || c.runcRoot == "" || c.log == "" {
		return errors.New("shim: --id, --bundle, --runc-root and --log are required")
	}
	diag, err := os.OpenFile(filepath.Join(c.bundle, shimLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("shim of %s: %w", c.id, err)
	}
	defer diag.Close()
	log := slog.New(slog.NewTextHandler(diag, nil)).With("sandbox", c.id)
	// Keep the report pipe from runc and the sandbox: Start reads it to
	// the end.
	syscall.CloseOnExec(3)
	rep := os.NewFile(3, "report")
	if err := shim(c, log, rep); err != nil {
		log.Error("shim failed", "err", err)
		return err
	}
	return nil
}

// shim does RunShim's work; rep is closed once the report is sent.
func shim(c shimConfig, log *slog.Logger, rep *os.File) error {
	fail := func(err error) error {
		sendReport(rep, report{Error: err.Error()})
		return err
	}
	// Orphans of our children (the sandbox's process, once runc exits)
	// become ours to reap.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("becoming a subreaper: %w", err))
	}
	out, err := logfile.Open(c.log, logfile.Options{})
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	var copies sync.WaitGroup
	var pipes [2]*os.File // read ends: stdout, stderr
	var ends [2]*os.File  // write ends, given to runc and so to the sandbox
	for i, stream := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("making pipes: %w", err))
		}
		pipes[i], ends[i] = r, w
		copies.Add(1)
		go func() {
			defer copies.Done()
			if err := out.Copy(stream, r); err != nil {
				log.Error("copying output", "stream", stream, "err", err)
			}
		}()
	}
	closePipes := func() {
		for _, f := range append(pipes[:], ends[:]...) {
			f.Close()
		}
	}

	pid, err := runContainer(c, ends)
	ends[0].Close() // only the sandbox holds them now
	ends[1].Close()
	if err != nil {
		drain(&copies, closePipes)
		return fail(err)
	}
	sendReport(rep, report{Pid: pid})
	log.Info("sandbox started", "pid", pid, "created_only", c.create)

	exit := reap(pid, log)
	exit.OOMKilled = oomKilled(c.bundle, log)
	drain(&copies, closePipes)
	if err := out.Close(); err != nil {
		log.Error("closing the log", "err", err)
	}
	if err := writeJSON(filepath.Join(c.bundle, exitFile), recordOf(exit)); err != nil {
		return err
	}
	log.Info("sandbox exited", "code", exit.Code, "signal", exit.Signal, "oom_killed", exit.OOMKilled)
	return nil
}

// runContainer runs `runc run --detach` (or `runc create`) with the
// sandbox's stdio on ends and returns the pid of the sandbox's process
// (after create, of runc's init, which becomes the process on start).
func runContainer(c shimConfig, ends [2]*os.File) (int, error) {
	runcLog := filepath.Join(c.bundle, runcLogFile)
	pidFile := filepath.Join(c.bundle, initPidFile)
	verb := []string{"run", "--detach"}
	if c.create {
		verb = []string{"create"}
	}
	cmd := exec.Command(c.runc, append(append([]string{"--root", c.runcRoot, "--log", runcLog, "--log-format", "json"}, verb...),
		"--bundle", c.bundle, "--pid-file", pidFile, c.id)...)
	cmd.Dir = c.bundle
	cmd.Stdout, cmd.Stderr = ends[0], ends[1] // *os.File: given as they are, no copying
	if err := cmd.Run(); err != nil {
		if msg := lastError(runcLog); msg != "" {
			return 0, errors.New(msg)
		}
		return 0, fmt.Errorf("runc %s: %w", verb[0], err)
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return 0, fmt.Errorf("reading the sandbox's pid: %w", err)
	}
	return pid, nil
}

// lastError returns the message of the last error in runc's JSON log.
func lastError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	msg := ""
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && (rec.Level == "error" || rec.Level == "fatal") && rec.Msg != "" {
			msg = rec.Msg
		}
	}
	return msg
}

func sendReport(rep *os.File, r report) {
	if rep == nil {
		return
	}
	b, _ := json.Marshal(r)
	_, _ = rep.Write(b) // the driver may be gone; nothing to do about it
	rep.Close()
}

// reap waits for our children until pid has exited, and says how.
func reap(pid int, log *slog.Logger) runtime.Exit {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			// ECHILD: pid is not our child after all (the kernel did not
			// reparent it to us); watch it without its status.
			log.Error("reaping", "err", err)
			if fd, err := unix.PidfdOpen(pid, 0); err == nil {
				fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				for {
					if _, err := unix.Poll(fds, -1); !errors.Is(err, unix.EINTR) {
						break
					}
				}
				unix.Close(fd)
			}
			return unknownExit(time.Now().UTC())
		case got == pid && (ws.Exited() || ws.Signaled()):
			return runtime.ExitOf(syscall.WaitStatus(ws), time.Now().UTC())
		}
	}
}

// drain waits for the output copies to end, cutting them off after
// logDrainTimeout, and closes the pipes.
func drain(copies *sync.WaitGroup, closePipes func()) {
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(logDrainTimeout):
	}
	closePipes()
	<-done
}
