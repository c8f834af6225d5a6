// Command testprog is the program the runtime conformance suite runs in
// sandboxes. runtimetest builds it statically (CGO_ENABLED=0) so that it
// runs both on the host (fake driver) and alone in an image (runc driver).
//
// It first prints "hello stdout" and "hello stderr", then does what its
// first argument says:
//
//	exit N        exit with code N
//	sleep         wait; on SIGTERM print "got SIGTERM" and exit 0
//	ignore-term   ignore SIGTERM and wait (only SIGKILL ends it)
//	probe         print what the sandbox looks like from inside, exit 0
//	spam N        print N numbered lines to stdout, exit 0
//	hog           use memory until something stops it
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	fmt.Fprintln(os.Stdout, "hello stdout")
	fmt.Fprintln(os.Stderr, "hello stderr")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testprog exit N | sleep | ignore-term | probe | spam N | hog")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "exit":
		n, _ := strconv.Atoi(arg(2))
		os.Exit(n)
	case "sleep":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		fmt.Println("got SIGTERM")
		os.Exit(0)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour)
		}
	case "probe":
		probe()
	case "spam":
		n, _ := strconv.Atoi(arg(2))
		for i := range n {
			fmt.Printf("spam %06d %s\n", i, strings.Repeat("x", 64))
		}
	case "hog":
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func arg(i int) string {
	if i < len(os.Args) {
		return os.Args[i]
	}
	return ""
}

// probe prints "key: value" lines the tests look for.
func probe() {
	wd, _ := os.Getwd()
	fmt.Println("cwd:", wd)
	fmt.Println("uid:", os.Getuid(), "gid:", os.Getgid())
	fmt.Println("env NOOPS_PROBE:", os.Getenv("NOOPS_PROBE"))
	host, _ := os.Hostname()
	fmt.Println("hostname:", host)
	fmt.Println("write /tmp:", try(os.WriteFile("/tmp/probe", []byte("x"), 0o600)))
	fmt.Println("write /:", try(os.WriteFile("/probe", []byte("x"), 0o600)))
	if b, err := os.ReadFile("/etc/noops-layer"); err == nil {
		fmt.Println("layer:", strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile("/etc/noops-bottom"); err == nil {
		fmt.Println("bottom:", strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			for _, k := range []string{"Uid", "Gid", "Cap", "NoNewPrivs", "Seccomp"} {
				if strings.HasPrefix(l, k) {
					fmt.Println("status", l)
				}
			}
		}
	}
}

func try(err error) string {
	if err != nil {
		return "denied (" + err.Error() + ")"
	}
	return "ok"
}
