package unpack

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// gunzip decompresses every gzip member of n into one child; data after
// the last member that is not gzip is reported, not decoded.
func (w *walker) gunzip(n *Node) {
	cr := &countingReader{r: n.Content()}
	br := bufio.NewReader(cr)
	zr, err := gzip.NewReader(br)
	if err != nil {
		n.warn("gzip header unreadable (%v): content not decompressed", err)
		return
	}
	if !w.room(n, "the gzip content") {
		return
	}
	name := stripSuffix(n.Name, gzipSuffixes)
	original := ""
	if zr.Name != "" {
		original = zr.Name
		name = path.Join(path.Dir(n.Name), path.Base(sanitize(zr.Name)))
	}
	mtime := zr.ModTime
	limit, budget := w.limit(n.Size)
	sp := w.newSpool(limit, budget)
	sp.hint(gzipSize(n))
	var cerr error
	var trailing string
	for {
		zr.Multistream(false)
		if cerr = w.copy(sp, zr); cerr != nil {
			break
		}
		if _, err := br.Peek(1); err != nil {
			break
		}
		at := cr.n - int64(br.Buffered())
		if err := zr.Reset(br); err != nil {
			trailing = fmt.Sprintf("%s after the gzip stream at offset %d are not gzip data (%v): not decoded", human(n.Size-at), at, err)
			break
		}
	}
	c := w.child(n, KindGzip, name, original, KindGzip, sp)
	c.ModTime = mtime
	if errors.Is(cerr, gzip.ErrChecksum) {
		c.warn("CRC-32 mismatch: the content is corrupt or was altered")
		cerr = nil
	}
	w.settle(c, sp, n.Size, cerr, "gzip stream")
	if trailing != "" {
		n.warn("%s", trailing)
	}
	w.keep(n, c)
}

// gzipSize reads the uncompressed size (mod 4 GiB) from the trailer of
// the last gzip member, a hint only.
func gzipSize(n *Node) int64 {
	var b [4]byte
	if n.Size < 18 {
		return 0
	}
	if _, err := n.Content().ReadAt(b[:], n.Size-4); err != nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint32(b[:]))
}

// bunzip2 decompresses n (concatenated bzip2 streams included).
func (w *walker) bunzip2(n *Node) {
	if !w.room(n, "the bzip2 content") {
		return
	}
	limit, budget := w.limit(n.Size)
	sp := w.newSpool(limit, budget)
	err := w.copy(sp, bzip2.NewReader(n.Content()))
	c := w.child(n, KindBzip2, stripSuffix(n.Name, bzip2Suffixes), "", KindBzip2, sp)
	w.settle(c, sp, n.Size, err, "bzip2 stream")
	w.keep(n, c)
}

// untar reads n's tar entries: regular files become children; links,
// devices and fifos are recorded as warnings, never followed or created.
func (w *walker) untar(n *Node) {
	cr := &countingReader{r: n.Content()}
	tr := tar.NewReader(cr)
	for i := 0; ; i++ {
		if w.ctx.Err() != nil {
			return
		}
		at := cr.n
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				n.warn("truncated tar: the archive ends inside the header after %d entries", i)
			} else {
				n.warn("tar header unreadable after %d entries, near offset %d (%v): the remaining %s not unpacked", i, at, err, human(n.Size-at))
			}
			n.Truncated = true
			return
		}
		if i >= w.opt.MaxEntries {
			n.warn("entry limit of %d reached (MaxEntries): entries from %q on not unpacked", w.opt.MaxEntries, hdr.Name)
			return
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeSymlink:
			n.warn("symbolic link %q -> %q recorded, not followed", hdr.Name, hdr.Linkname)
			continue
		case tar.TypeLink:
			n.warn("hard link %q -> %q recorded, not followed", hdr.Name, hdr.Linkname)
			continue
		case tar.TypeChar, tar.TypeBlock:
			n.warn("device file %q recorded, not created", hdr.Name)
			continue
		case tar.TypeFifo:
			n.warn("fifo %q recorded, not created", hdr.Name)
			continue
		default:
			if hdr.Size == 0 {
				continue
			}
			n.warn("entry %q has unknown type %q: read as a regular file", hdr.Name, hdr.Typeflag)
		}
		if !w.room(n, fmt.Sprintf("tar entry %q and the ones after it", hdr.Name)) {
			return
		}
		limit, budget := w.limit(n.Size)
		sp := w.newSpool(limit, budget)
		sp.hint(hdr.Size)
		err = w.copy(sp, tr)
		c := w.entry(n, KindTar, hdr.Name, sp)
		c.ModTime = hdr.ModTime
		if errors.Is(err, io.ErrUnexpectedEOF) {
			c.warn("truncated tar: %s of the entry's %s recovered", human(c.Size), human(hdr.Size))
			c.Truncated, n.Truncated = true, true
			w.keep(n, c)
			return
		}
		w.settle(c, sp, hdr.Size, err, "tar entry")
		w.keep(n, c)
	}
}

// unzip reads n's zip entries through the central directory, falling back
// to the local headers when it is unreadable. appended says the archive
// was found at the end of other content (no local-header fallback then).
func (w *walker) unzip(n *Node, appended bool) {
	zr, err := zip.NewReader(n.Content(), n.Size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		if appended {
			n.warn("a zip end record was found at the end but the archive is unreadable (%v): not unpacked", err)
			return
		}
		n.warn("zip central directory unreadable (%v): entries recovered from the local headers", err)
		w.unzipLocal(n)
		return
	}
	opened, failed := 0, 0
	defer func() {
		if failed > 0 && opened == 0 && !appended {
			n.warn("no entry of the zip central directory could be read: entries recovered from the local headers")
			w.unzipLocal(n)
		}
	}()
	for i, f := range zr.File {
		if w.ctx.Err() != nil {
			return
		}
		if i >= w.opt.MaxEntries {
			n.warn("entry limit of %d reached (MaxEntries): %d entries from %q on not unpacked", w.opt.MaxEntries, len(zr.File)-i, f.Name)
			return
		}
		mode := f.Mode()
		switch {
		case mode.IsDir() || strings.HasSuffix(f.Name, "/") && f.UncompressedSize64 == 0:
			continue
		case mode&fs.ModeSymlink != 0:
			n.warn("symbolic link %q recorded, not followed", f.Name)
			continue
		case mode&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
			n.warn("special file %q (%v) recorded, not created", f.Name, mode.Type())
			continue
		case f.Flags&0x1 != 0:
			n.warn("zip entry %q is encrypted: not decrypted", f.Name)
			continue
		}
		if !w.room(n, fmt.Sprintf("zip entry %q and the ones after it", f.Name)) {
			return
		}
		rc, err := f.Open()
		if err != nil {
			n.warn("zip entry %q unreadable (%v): skipped", f.Name, err)
			failed++
			continue
		}
		opened++
		in := int64(min(f.CompressedSize64, uint64(n.Size)))
		limit, budget := w.limit(in)
		sp := w.newSpool(limit, budget)
		sp.hint(int64(min(f.UncompressedSize64, 1<<62)))
		err = w.copy(sp, rc)
		rc.Close()
		c := w.entry(n, KindZip, f.Name, sp)
		c.ModTime = f.Modified
		if errors.Is(err, zip.ErrChecksum) {
			c.warn("CRC-32 mismatch: the content is corrupt or was altered")
			err = nil
		}
		w.settle(c, sp, in, err, "zip entry")
		w.keep(n, c)
	}
}
