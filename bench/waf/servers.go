package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// server is a server process under test.
type server struct {
	name  string
	addr  string // HTTPS on 127.0.0.1
	debug string // net/http/pprof on 127.0.0.1
	rules int
	pid   int
	cmd   *exec.Cmd
	log   *os.File
}

// servers are the processes the driver started; stop ends them.
type servers struct{ list []*server }

// start runs this binary as a server of the given name, its log in the
// output folder, and waits until it serves.
func (ss *servers) start(name, certFile, keyFile string, cfg config) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(cfg.outDir, "waf-server-"+name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "serve", "--mode", name, "--cert", certFile, "--key", keyFile)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cfg.serverProcs))
	cmd.Stderr = logf
	// The server dies with the driver, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting the %s server: %w", name, err)
	}
	s := &server{name: name, pid: cmd.Process.Pid, cmd: cmd, log: logf}
	ss.list = append(ss.list, s)
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	var rd ready
	select {
	case l := <-line:
		if err := json.Unmarshal([]byte(l), &rd); err != nil || rd.HTTPS == "" {
			return fmt.Errorf("the %s server did not start (see %s)", name, logf.Name())
		}
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("the %s server did not start in 2 minutes (see %s)", name, logf.Name())
	}
	s.addr, s.debug, s.rules = rd.HTTPS, rd.Debug, rd.Rules
	fmt.Fprintf(os.Stderr, "%s: pid %d, https %s, %d rules\n", name, s.pid, s.addr, s.rules)
	return nil
}

func (ss *servers) get(name string) *server {
	for _, s := range ss.list {
		if s.name == name {
			return s
		}
	}
	panic("waf: no server " + name)
}

// restart replaces a server with a fresh process of the same kind.
func (ss *servers) restart(name, certFile, keyFile string, cfg config) error {
	i := slices.IndexFunc(ss.list, func(s *server) bool { return s.name == name })
	if i < 0 {
		return fmt.Errorf("no %s server to restart", name)
	}
	s := ss.list[i]
	ss.list = slices.Delete(ss.list, i, i+1)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.wait()
	return ss.start(name, certFile, keyFile, cfg)
}

// stop ends every server: SIGTERM, then SIGKILL after 10 s.
func (ss *servers) stop() {
	for _, s := range ss.list {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, s := range ss.list {
		s.wait()
	}
	ss.list = nil
}

// wait waits for a server told to stop, killing it after 10 s.
func (s *server) wait() {
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "waf: the %s server did not stop in 10 s; killing it\n", s.name)
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.log.Close()
}
