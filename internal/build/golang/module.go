package golang

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	gobuild "go/build"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"noops/internal/errkind"
)

// modulePath reads the module directive of go.mod.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", fmt.Errorf("reading go.mod: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t' && rest[0] != '"') {
			continue
		}
		p := strings.TrimSpace(rest)
		if unq, err := strconv.Unquote(p); err == nil {
			p = unq
		}
		if p != "" {
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading go.mod: %w", err)
	}
	return "", errkind.Errorf(errkind.Invalid, "go.mod has no module line: start it with `module <path>` (go mod init <path> writes one)")
}

var (
	majorVersion = regexp.MustCompile(`^v[0-9]+$`)
	unsafeChars  = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// binaryName is what the app's binary is called: the module path's last
// element ("example.com/shop/v2" gives "shop"), or "app".
func binaryName(modPath string) string {
	name := path.Base(modPath)
	if majorVersion.MatchString(name) && path.Dir(modPath) != "." {
		name = path.Base(path.Dir(modPath))
	}
	name = strings.TrimLeft(unsafeChars.ReplaceAllString(name, "-"), ".-")
	if name == "" || len(name) > 64 {
		return "app"
	}
	return name
}

// mainPackage returns the package to build: "." when the module root is
// package main, else the single main package under cmd/.
func mainPackage(src string) (string, error) {
	ctx := gobuild.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", runtime.GOARCH, false
	isMain := func(dir string) (bool, error) {
		p, err := ctx.ImportDir(dir, 0)
		var none *gobuild.NoGoError
		if errors.As(err, &none) {
			return false, nil
		}
		if err != nil {
			rel, _ := filepath.Rel(src, dir)
			return false, errkind.Errorf(errkind.Invalid, "reading Go package %s: %v", filepath.ToSlash(rel), err)
		}
		return p.Name == "main", nil
	}
	if ok, err := isMain(src); err != nil || ok {
		return ".", err
	}
	des, err := os.ReadDir(filepath.Join(src, "cmd"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("looking for main packages: %w", err)
	}
	var mains []string
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		ok, err := isMain(filepath.Join(src, "cmd", de.Name()))
		if err != nil {
			return "", err
		}
		if ok {
			mains = append(mains, "./cmd/"+de.Name())
		}
	}
	switch len(mains) {
	case 1:
		return mains[0], nil
	case 0:
		return "", errkind.WithHint(errkind.Invalid,
			errors.New("go.mod found but no main package: expected package main at the module root or in one cmd/<name> folder"),
			"put the app's func main in the module root or in cmd/<name>")
	default:
		return "", errkind.WithHint(errkind.Invalid,
			fmt.Errorf("go.mod found with several main packages (%s): noops builds one program per app and cannot tell which to run", strings.Join(mains, ", ")),
			"keep one main package under cmd/, or put the one to deploy at the module root, or deploy each from its own module")
	}
}

// teeWriter streams the compiler's output to the build log and keeps its
// tail. A failing log does not fail the build.
type teeWriter struct {
	log  io.Writer
	tail *tailWriter
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.log.Write(p) //nolint:errcheck // the log is best effort; the tail carries errors
	return w.tail.Write(p)
}

// tailWriter keeps the last 64 KiB written to it.
type tailWriter struct{ buf []byte }

const tailBytes = 64 << 10

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - tailBytes; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

// last returns the last n lines written.
func (w *tailWriter) last(n int) string {
	b := bytes.TrimRight(w.buf, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = append([][]byte{[]byte("[earlier lines left out]")}, lines[len(lines)-n:]...)
	}
	return string(bytes.Join(lines, []byte("\n")))
}
