package forensics

import (
	"cmp"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// maxWorkers bounds the objects written and unpacked at once.
const maxWorkers = 4

// objects writes and unpacks a capture's objects. Their names are
// reserved first, in order, so that which copy becomes "x~2" does not
// depend on timing; then the top capture's objects are written in
// parallel (nested captures, already inside a worker, go one by one),
// each into its own sink, merged into s in order.
func (x *extraction) objects(c *captureRun, objs []*flow.Object, s *sink) error {
	paths := make([]string, len(objs))
	for i, o := range objs {
		paths[i] = x.out.reserve(path.Join(c.dir, o.Protocol, safeName(o.Name, o.Protocol+"-object")))
	}
	parts := make([]sink, len(objs))
	for i := range parts {
		s.parts = append(s.parts, &parts[i])
	}
	workers := 1
	if c.depth == 0 {
		workers = min(runtime.GOMAXPROCS(0), maxWorkers, len(objs))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(objs) || x.ctx.Err() != nil {
					return
				}
				x.object(c, objs[i], paths[i], &parts[i])
				objs[i].Close() // release its buffer before the next
			}
		})
	}
	wg.Wait()
	if err := x.ctx.Err(); err != nil {
		return fmt.Errorf("extracting the objects of %s: %w", c.label, err)
	}
	return nil
}

// object writes one extracted object at its reserved path, records its
// entry, then unpacks it.
func (x *extraction) object(c *captureRun, o *flow.Object, rel string, s *sink) {
	if s.protos == nil {
		s.protos = map[string]int{}
	}
	s.protos[o.Protocol]++
	e := Entry{
		Protocol: o.Protocol, Name: o.Name, NameFrom: o.NameFrom,
		Flow: flowString(o.Flow), Conn: o.Flow.Conn, Control: flowString(o.Control),
		FirstFrame: o.Frames.First, LastFrame: o.Frames.Last, FirstTime: jsonTime(o.Frames.FirstTime), LastTime: jsonTime(o.Frames.LastTime),
		Capture: c.path, Ranges: rangeStrings(o.Ranges), Gaps: rangeStrings(mergeRanges(o.Gaps)),
		ExpectedSize: o.ExpectedSize, Complete: o.Complete,
		// The chain names the object as its file does, without "~2".
		Chain:   append(slices.Clip(c.chain), o.Protocol+":"+safeName(o.Name, o.Protocol+"-object")),
		Decoded: o.Decoded, Notes: o.Notes,
	}
	if o.Size < 0 || o.Data == nil {
		s.warn(c.label, "%s object %q has no content: not written", o.Protocol, o.Name)
		return
	}
	p, sum, n, err := x.out.write(rel, true, io.NewSectionReader(o.Data, 0, o.Size), o.Size)
	if p == "" {
		s.warn(c.label, "%s object %q (%d bytes, %s) not written: %v", o.Protocol, o.Name, o.Size, strings.Join(e.Chain, " > "), err)
		return
	}
	e.Path, e.SHA256, e.Size = p, sum, n
	switch {
	case err != nil:
		s.warn(p, "%v: the file holds the first %d of %d bytes", err, n, o.Size)
		e.Complete = false
	case n < o.Size:
		s.warn(p, "only %d of the object's %d bytes could be read: the file holds those", n, o.Size)
		e.Complete = false
	}
	switch {
	case len(o.Gaps) > 0:
		s.warn(p, "%s of the object's %d bytes were not captured (bytes %s); the file has zeros there",
			plural(gapBytes(mergeRanges(o.Gaps)), "byte"), max(o.Size, o.ExpectedSize), strings.Join(e.Gaps, ", "))
	case !o.Complete:
		s.warn(p, "%s did not report the transfer complete; it may lack bytes the capture did not hold", o.Protocol)
	}
	if err != nil {
		s.objects = append(s.objects, e)
		return
	}
	x.unpack(c, e, s)
}

// jsonTime drops a time JSON cannot hold (a year outside 0-9999, which
// only a corrupt or forged capture gives).
func jsonTime(t time.Time) time.Time {
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}
	}
	return t
}

func flowString(f flow.FlowRef) string {
	if f.Proto == "" {
		return ""
	}
	return fmt.Sprintf("%s %s -> %s", f.Proto, f.Src, f.Dst)
}

func rangeStrings(rs []flow.Range) []string {
	if len(rs) == 0 {
		return nil
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// mergeRanges sorts ranges and joins those that touch or overlap:
// "0-10, 10-20" is "0-20".
func mergeRanges(rs []flow.Range) []flow.Range {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b flow.Range) int { return cmp.Compare(a.Start, b.Start) })
	return proto.MergeRanges(rs)
}

func gapBytes(rs []flow.Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.End - r.Start
	}
	return n
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
