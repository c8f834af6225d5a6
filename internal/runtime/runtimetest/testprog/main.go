// Command testprog is the program that tests run in sandboxes: the runtime
// conformance suite, the runc driver's tests and buildbox's. runtimetest
// builds it statically (CGO_ENABLED=0) so that it runs both on the host
// (fake driver) and alone in an image (runc driver).
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
//	pause D       print "before", sleep for duration D, print "after", exit 0
//	write F TEXT  write TEXT to file F; print "write F: ok" (exit 0) or
//	              "write F: denied (why)" (exit 1)
//	cat F         print file F (exit 0), or the error (exit 1)
//	dial ADDR     connect to TCP ADDR within 5s and print "dial: " and the
//	              first line the peer sends (exit 0), or the error (exit 1)
package main

import (
	"bufio"
	"fmt"
	"net"
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
		fmt.Fprintln(os.Stderr, "usage: testprog exit N | sleep | ignore-term | probe | spam N | hog | pause D | write F TEXT | cat F | dial ADDR")
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
	case "spin": // burn CPU for a while, then wait for SIGTERM
		d, _ := time.ParseDuration(arg(2))
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
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
	case "pause":
		d, err := time.ParseDuration(arg(2))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("before")
		time.Sleep(d)
		fmt.Println("after")
	case "write":
		r := try(os.WriteFile(arg(2), []byte(arg(3)), 0o644))
		fmt.Printf("write %s: %s\n", arg(2), r)
		if r != "ok" {
			os.Exit(1)
		}
	case "cat":
		b, err := os.ReadFile(arg(2))
		if err != nil {
			fmt.Println("cat:", err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	case "dial":
		os.Exit(dial(arg(2)))
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
	fmt.Println("env HOME:", os.Getenv("HOME"))
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

// dial connects to addr and prints the first line the peer sends.
func dial(addr string) int {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("dial: reading:", err)
		return 1
	}
	fmt.Print("dial: ", line)
	return 0
}

func try(err error) string {
	if err != nil {
		return "denied (" + err.Error() + ")"
	}
	return "ok"
}
