package forensics

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"noops/internal/forensics/pcap"
	"noops/internal/forensics/unpack"
)

// unpack walks the written object e and writes its tree below it.
func (x *extraction) unpack(c *captureRun, e Entry, s *sink) {
	f, err := x.out.root.Open(filepath.FromSlash(e.Path))
	if err != nil {
		s.warn(e.Path, "reopening to unpack: %v", err)
		s.objects = append(s.objects, e)
		return
	}
	defer f.Close()
	// The root is named as the file, so that what is derived from it is
	// named after it ("x.gz" gives "x"); chains take the object's element.
	tree, err := unpack.Walk(x.ctx, path.Base(e.Path), f, e.Size, unpack.Options{
		MaxDepth: max(1, x.opt.MaxDepth-c.depth), TempDir: x.opt.TempDir, Flag: x.opt.Flag})
	if err != nil {
		s.warn(e.Path, "unpacking: %v", err)
	}
	if tree == nil {
		s.objects = append(s.objects, e)
		return
	}
	defer tree.Close()
	e.Format, e.Flags = tree.Format, tree.Flags
	nodeNotes(&e, tree, s)
	s.objects = append(s.objects, e)
	x.expand(c, e, tree, e.Chain, s)
}

// expand extracts a node that is a capture, records its flags, and
// writes its children.
func (x *extraction) expand(c *captureRun, e Entry, n *unpack.Node, objChain []string, s *sink) {
	var inside map[string]bool
	if n.IsCapture() {
		before := len(s.flags)
		x.nested(c, e, n, s)
		inside = map[string]bool{}
		for _, h := range s.flags[before:] {
			inside[h.Flag] = true
		}
	}
	flags(e, n, inside, s)
	x.children(c, e, n, objChain, s)
}

// children writes the nodes below n (whose entry is parent) into
// parent.Path + ".unpacked/", recursively.
func (x *extraction) children(c *captureRun, parent Entry, n *unpack.Node, objChain []string, s *sink) {
	if len(n.Children) == 0 {
		return
	}
	dir, err := x.out.mkdirNew(parent.Path + ".unpacked")
	if err != nil {
		s.warn(parent.Path, "not unpacked: %v", err)
		return
	}
	for _, ch := range n.Children {
		if x.ctx.Err() != nil {
			return
		}
		e := Entry{
			Protocol: parent.Protocol, Name: ch.Original, NameFrom: nameFrom(ch),
			Flow: parent.Flow, Conn: parent.Conn, Control: parent.Control,
			FirstFrame: parent.FirstFrame, LastFrame: parent.LastFrame, FirstTime: parent.FirstTime, LastTime: parent.LastTime,
			Capture: parent.Capture, ExpectedSize: -1, Complete: parent.Complete && !ch.Truncated,
			Chain: append(slices.Clip(objChain), ch.Chain[1:]...), Parent: parent.Path,
			Format: ch.Format, Flags: ch.Flags,
		}
		if e.Name == "" {
			e.Name = ch.Name
		}
		p, sum, size, err := x.out.write(path.Join(dir, ch.Name), false, ch.Content(), ch.Size)
		if p == "" {
			s.warn(parent.Path, "%s not written: %v", strings.Join(e.Chain, " > "), err)
			if errors.Is(err, errBudget) {
				return
			}
			continue
		}
		e.Path, e.SHA256, e.Size = p, sum, size
		if err != nil || size < ch.Size {
			s.warn(p, "%d of %d bytes written: %v", size, ch.Size, err)
			e.Complete = false
		} else if sum != ch.SHA256 {
			s.warn(p, "the written file's SHA-256 %s differs from the unpacked content's %s", sum, ch.SHA256)
		}
		nodeNotes(&e, ch, s)
		s.objects = append(s.objects, e)
		if err != nil {
			flags(e, ch, nil, s)
			continue
		}
		x.expand(c, e, ch, objChain, s)
	}
}

// nodeNotes copies a node's verdicts and warnings into its entry, and
// the warnings into the sink.
func nodeNotes(e *Entry, n *unpack.Node, s *sink) {
	if n.Why != "" && n.Kind != unpack.KindFile {
		e.Notes = append(e.Notes, fmt.Sprintf("%s decoding kept: %s", n.Kind, n.Why))
	}
	if n.Attempts > 0 {
		e.Notes = append(e.Notes, fmt.Sprintf("%d decodings tried and not kept", n.Attempts))
	}
	if n.Truncated {
		e.Complete = false
	}
	for _, w := range n.Warnings {
		e.Notes = append(e.Notes, w)
		s.warn(e.Path, "%s", w)
	}
}

// flags records the matches of n that no node below it holds, nor the
// capture it is (inside): a flag in a file inside a tar is reported at
// the file, not at the tar too.
func flags(e Entry, n *unpack.Node, inside map[string]bool, s *sink) {
	for _, f := range n.Flags {
		deeper := inside[f]
		for _, ch := range n.Children {
			ch.Visit(func(d *unpack.Node) bool {
				deeper = deeper || slices.Contains(d.Flags, f)
				return !deeper
			})
		}
		if !deeper {
			s.flags = append(s.flags, FlagHit{Flag: f, Path: e.Path, Chain: e.Chain})
		}
	}
}

// nested extracts a capture found inside an object into
// <entry>.extracted/, continuing the chain.
func (x *extraction) nested(c *captureRun, e Entry, n *unpack.Node, s *sink) {
	if c.depth+1 >= x.opt.MaxDepth {
		s.warn(e.Path, "a capture nested %d deep: not extracted (MaxDepth %d)", c.depth+1, x.opt.MaxDepth)
		return
	}
	rd, err := pcap.Open(n.Content())
	if err != nil {
		s.warn(e.Path, "looks like a capture but cannot be read: %v", err)
		return
	}
	dir, err := x.out.mkdirNew(e.Path + ".extracted")
	if err != nil {
		s.warn(e.Path, "nested capture not extracted: %v", err)
		return
	}
	s.captures++
	sub := &captureRun{label: e.Path, chain: e.Chain, dir: dir, path: e.Path, depth: c.depth + 1}
	var inner sink
	if _, _, err := x.capture(sub, rd, &inner); err != nil {
		inner.warn(e.Path, "%v", err)
	}
	// What the nested capture held comes right after the capture's entry.
	s.absorb(&inner)
}

// nameFrom says where an unpacked node's name came from.
func nameFrom(n *unpack.Node) string {
	switch n.Kind {
	case unpack.KindTar, unpack.KindZip:
		return n.Kind + " entry"
	case unpack.KindUUEncode:
		return "uuencode begin line"
	}
	return n.Kind + " decoding"
}
