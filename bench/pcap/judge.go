package main

// Judging a tool's output on a case: the file by its SHA-256, and, when
// it is not there, what the tool wrote instead.

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
)

// judgeFile: right when a file with the object's SHA-256 was written.
func judgeFile(t *caseTruth, out *toolOutput, _ bool) verdict {
	if f, ok := bySum(out.files)[t.want.SHA256]; ok {
		return verdict{OK: true, Short: "right", Text: "right: " + f.Rel}
	}
	return miss(t, out)
}

// judgeFlag: right when the flag was found: in noops's manifest, or in
// a file the tool wrote.
func judgeFlag(t *caseTruth, out *toolOutput, ours bool) verdict {
	outer := "outer tar missing"
	if f, ok := bySum(out.files)[t.want.SHA256]; ok {
		outer = "outer tar right (" + f.Rel + ")"
	}
	if out.manifest != nil {
		for _, fl := range out.manifest.Flags {
			if fl.Flag == t.flag {
				return verdict{OK: true, Short: "flag found", Text: fmt.Sprintf("%s; flag found: %s in %s", outer, fl.Flag, fl.Path)}
			}
		}
	}
	for _, f := range out.files {
		if f.Size > 64<<20 {
			continue
		}
		if b, err := os.ReadFile(f.Abs); err == nil && bytes.Contains(b, []byte(t.flag)) {
			where := "in a file it wrote"
			if ours {
				where = "not in the manifest's flags, but in a file it wrote"
			}
			return verdict{OK: true, Short: "flag found", Text: fmt.Sprintf("%s; flag %s %s (%s)", outer, t.flag, where, f.Rel)}
		}
	}
	return verdict{Short: "no flag", Text: outer + "; flag not found"}
}

// judgeCut: right when a file holds the captured part of the object
// (zeros after it allowed) and the tool says it is incomplete. tshark
// has no way to say so; noops's manifest does (complete false, gaps, or
// a size short of the announced one).
func judgeCut(t *caseTruth, out *toolOutput, ours bool) verdict {
	var best *outFile
	for i, f := range out.files {
		if f.Size > int64(2*t.want.Size) {
			continue
		}
		b, err := os.ReadFile(f.Abs)
		if err != nil || !holdsPrefix(b, t.want.data, t.captured) {
			continue
		}
		if best == nil || f.Size > best.Size {
			best = &out.files[i]
		}
	}
	if best == nil {
		return miss(t, out)
	}
	what := fmt.Sprintf("%s: %d bytes, the %d captured bytes right", best.Rel, best.Size, t.captured)
	if !ours || out.manifest == nil {
		return verdict{Short: "unmarked", Text: what + ", nothing says it is incomplete"}
	}
	for _, o := range out.manifest.Objects {
		if o.Path != best.Rel {
			continue
		}
		if !o.Complete || len(o.Gaps) > 0 || (o.ExpectedSize > 0 && o.Size < o.ExpectedSize) {
			return verdict{OK: true, Short: "right, marked", Text: fmt.Sprintf("%s; marked incomplete (complete %v, expected %d bytes, gaps %s)",
				what, o.Complete, o.ExpectedSize, strings.Join(o.Gaps, " "))}
		}
		return verdict{Short: "unmarked", Text: what + ", but the manifest says it is complete"}
	}
	return verdict{Short: "unmarked", Text: what + ", not in the manifest"}
}

// holdsPrefix says whether b starts with want's first n bytes and holds
// only zeros (a gap) or want's bytes after them.
func holdsPrefix(b, want []byte, n int) bool {
	if len(b) < n || !bytes.Equal(b[:n], want[:n]) {
		return false
	}
	for i := n; i < len(b); i++ {
		if b[i] != 0 && (i >= len(want) || b[i] != want[i]) {
			return false
		}
	}
	return true
}

// miss says what a tool wrote when the object is not among it.
func miss(t *caseTruth, out *toolOutput) verdict {
	if len(out.files) == 0 {
		return verdict{Short: "missing", Text: "no file written"}
	}
	files := append([]outFile(nil), out.files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Size > files[j].Size })
	var parts []string
	for i, f := range files {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("%d more", len(files)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d B: %s", f.Rel, f.Size, locate(f, t.want.data)))
	}
	return verdict{Short: "wrong", Text: fmt.Sprintf("%d file(s), none right (want %d B): %s", len(files), t.want.Size, strings.Join(parts, "; "))}
}

// locate says how a file relates to the object: a part of it, or where
// it first differs.
func locate(f outFile, want []byte) string {
	b, err := os.ReadFile(f.Abs)
	if err != nil {
		return "unreadable"
	}
	if len(b) >= 64 && len(b) < len(want) {
		if i := bytes.Index(want, b); i >= 0 {
			return fmt.Sprintf("bytes %d-%d of the file, exactly", i, i+len(b)-1)
		}
	}
	n := 0
	for n < len(b) && n < len(want) && b[n] == want[n] {
		n++
	}
	switch {
	case n == len(b):
		return fmt.Sprintf("the file's first %d bytes", n)
	case n == 0:
		return "differs from the first byte"
	default:
		diff := 0
		for i := n; i < min(len(b), len(want)); i++ {
			if b[i] != want[i] {
				diff++
			}
		}
		return fmt.Sprintf("right for %d bytes, then differs (%d of the next %d bytes)", n, diff, max(0, min(len(b), len(want))-n))
	}
}
