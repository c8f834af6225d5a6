package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"noops/internal/apitype"
)

// progress shows a deploy as it happens: an upload bar on a terminal, then
// the stages and the build log as the server streams them. With --json the
// log goes to stderr too, so stdout holds only the result.
type progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	bar  bool // a bar is on the current line
	last time.Time
}

func newProgress(w io.Writer, _ bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: w, tty: tty}
}

func (p *progress) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar {
		fmt.Fprint(p.w, "\n")
		p.bar = false
	}
	fmt.Fprintln(p.w, s)
}

func (p *progress) event(ev apitype.DeployEvent) {
	switch ev.Type {
	case "stage":
		p.line("==> " + ev.Stage)
	case "log":
		p.line("    " + ev.Line)
	}
}

// upload wraps r to draw the upload's progress.
func (p *progress) upload(r io.Reader, size int64) io.Reader {
	return &countingReader{r: r, size: size, p: p}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar {
		fmt.Fprint(p.w, "\n")
		p.bar = false
	}
}

type countingReader struct {
	r     io.Reader
	size  int64
	n     int64
	p     *progress
	first bool
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.draw(c.n, c.size, err != nil)
	return n, err
}

func (p *progress) draw(n, size int64, final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		if final && !p.bar {
			fmt.Fprintf(p.w, "==> uploaded %s\n", human(n))
			p.bar = false
			p.last = time.Now()
		}
		return
	}
	if !final && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	fill := width
	if size > 0 {
		fill = int(int64(width) * n / size)
	}
	bar := make([]byte, width)
	for i := range bar {
		if i < fill {
			bar[i] = '#'
		} else {
			bar[i] = '.'
		}
	}
	fmt.Fprintf(p.w, "\r==> uploading [%s] %s / %s", bar, human(n), human(size))
	p.bar = true
}
