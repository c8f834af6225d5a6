package unpack

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// Zip record signatures.
const (
	sigLocal      = 0x04034b50
	sigCentral    = 0x02014b50
	sigEnd        = 0x06054b50
	sigDescriptor = 0x08074b50
)

// localHeader is a zip local file header (APPNOTE 4.3.7).
type localHeader struct {
	flags, method uint16
	crc           uint32
	csize, usize  int64
	name          string
	data          int64 // offset of the entry's data
}

// readLocal reads the local header at off; ok is false when there is none.
func readLocal(ra io.ReaderAt, off, size int64) (h localHeader, ok bool, err error) {
	var b [30]byte
	k, _ := ra.ReadAt(b[:], off)
	if k < 4 || binary.LittleEndian.Uint32(b[:]) != sigLocal {
		return h, false, nil
	}
	if k < 30 {
		return h, true, errors.New("local header cut short")
	}
	le16 := func(i int) uint16 { return binary.LittleEndian.Uint16(b[i:]) }
	le32 := func(i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
	h.flags, h.method, h.crc = le16(6), le16(8), le32(14)
	h.csize, h.usize = int64(le32(18)), int64(le32(22))
	nlen, xlen := int64(le16(26)), int64(le16(28))
	h.data = off + 30 + nlen + xlen
	if h.data > size {
		return h, true, errors.New("name or extra field cut short")
	}
	name := make([]byte, nlen)
	ra.ReadAt(name, off+30)
	h.name = string(name)
	extra := make([]byte, xlen)
	ra.ReadAt(extra, off+30+nlen)
	if h.csize == 0xFFFFFFFF || h.usize == 0xFFFFFFFF {
		h.zip64(extra)
	}
	return h, true, nil
}

// zip64 takes the 64-bit sizes from the Zip64 extra field.
func (h *localHeader) zip64(extra []byte) {
	for len(extra) >= 4 {
		id, n := binary.LittleEndian.Uint16(extra), int(binary.LittleEndian.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			return
		}
		if id == 0x0001 {
			f := extra[:n]
			if h.usize == 0xFFFFFFFF && len(f) >= 8 {
				h.usize, f = int64(binary.LittleEndian.Uint64(f)&(1<<62-1)), f[8:]
			}
			if h.csize == 0xFFFFFFFF && len(f) >= 8 {
				h.csize = int64(binary.LittleEndian.Uint64(f) & (1<<62 - 1))
			}
			return
		}
		extra = extra[n:]
	}
}

// unzipLocal recovers entries by walking the local headers from the start,
// as for a zip whose end (and central directory) was cut off. Stored
// entries with a data descriptor are delimited by searching for it.
func (w *walker) unzipLocal(n *Node) {
	ra := n.Content()
	var off int64
	for i := 0; ; i++ {
		if w.ctx.Err() != nil {
			return
		}
		h, ok, err := readLocal(ra, off, n.Size)
		if !ok {
			sig := make([]byte, 4)
			k, _ := ra.ReadAt(sig, off)
			if k == 4 && (binary.LittleEndian.Uint32(sig) == sigCentral || binary.LittleEndian.Uint32(sig) == sigEnd) {
				return
			}
			if off < n.Size {
				n.warn("zip local header scan stopped at offset %d, which holds no header: %s not unpacked", off, human(n.Size-off))
			}
			return
		}
		if err != nil {
			n.warn("truncated zip: the local header at offset %d is incomplete (%v)", off, err)
			n.Truncated = true
			return
		}
		if i >= w.opt.MaxEntries {
			n.warn("entry limit of %d reached (MaxEntries): entries from %q on not unpacked", w.opt.MaxEntries, h.name)
			return
		}
		next, ok := w.localEntry(n, h)
		if !ok {
			return
		}
		off = next
	}
}

// localEntry unpacks one entry found by its local header and returns the
// offset of the next header; ok is false when that cannot be known.
func (w *walker) localEntry(n *Node, h localHeader) (next int64, ok bool) {
	ra := n.Content()
	descriptor := h.flags&0x8 != 0
	known := !descriptor || h.csize > 0
	if h.method == 0 && !known {
		if h.csize = findStoredEnd(ra, h.data, n.Size); h.csize < 0 {
			n.warn("zip entry %q: stored with a data descriptor that cannot be found: it and the rest not unpacked", h.name)
			return 0, false
		}
		known = true
	}
	skip := func(why string) (int64, bool) {
		if !known {
			n.warn("zip entry %q %s; its end is unknown: the entries after it not unpacked", h.name, why)
			return 0, false
		}
		n.warn("zip entry %q %s: skipped", h.name, why)
		return w.afterData(ra, h, h.data+h.csize, descriptor), true
	}
	var src io.Reader
	var cr *countingReader
	var br *bufio.Reader
	switch {
	case h.flags&0x1 != 0:
		return skip("is encrypted, not decrypted")
	case h.method == 0:
		src = io.NewSectionReader(ra, h.data, min(h.csize, n.Size-h.data))
	case h.method == 8:
		end := n.Size
		if known {
			end = min(h.data+h.csize, n.Size)
		}
		cr = &countingReader{r: io.NewSectionReader(ra, h.data, end-h.data)}
		br = bufio.NewReader(cr)
		src = flate.NewReader(br)
	default:
		return skip(fmt.Sprintf("uses compression method %d, which is not supported", h.method))
	}
	if strings.HasSuffix(h.name, "/") && h.usize == 0 && h.csize <= 2 {
		return w.afterData(ra, h, h.data+max(h.csize, 0), descriptor), true
	}
	if !w.room(n, fmt.Sprintf("zip entry %q and the ones after it", h.name)) {
		return 0, false
	}
	in := h.csize
	if !known {
		in = n.Size - h.data
	}
	limit, budget := w.limit(in)
	sp := w.newSpool(limit, budget)
	sp.hint(h.usize)
	sum := crc32.NewIEEE()
	err := w.copy(io.MultiWriter(sp, sum), src)
	end := h.data + h.csize
	if !known {
		end = h.data + cr.n - int64(br.Buffered())
	}
	c := w.entry(n, KindZip, h.name, sp)
	if err == nil {
		want := h.crc
		if descriptor {
			want = descriptorCRC(ra, end)
		}
		if want != sum.Sum32() {
			c.warn("CRC-32 mismatch: the content is corrupt or was altered")
		}
	}
	w.settle(c, sp, in, err, "zip entry")
	w.keep(n, c)
	if err != nil && !errors.Is(err, errBudget) || end >= n.Size {
		n.Truncated = n.Truncated || errors.Is(err, io.ErrUnexpectedEOF)
		return 0, false
	}
	if errors.Is(err, errBudget) && !known {
		n.warn("zip entry %q was not read to its end: the entries after it not unpacked", h.name)
		return 0, false
	}
	return w.afterData(ra, h, end, descriptor), true
}

// afterData is the offset after an entry's data and its data descriptor.
func (w *walker) afterData(ra io.ReaderAt, h localHeader, end int64, descriptor bool) int64 {
	if !descriptor {
		return end
	}
	var b [4]byte
	ra.ReadAt(b[:], end)
	if binary.LittleEndian.Uint32(b[:]) == sigDescriptor {
		end += 4
	}
	// crc32, then 4- or 8-byte sizes: take whichever lands on a signature.
	for _, n := range []int64{12, 20} {
		ra.ReadAt(b[:], end+n)
		switch binary.LittleEndian.Uint32(b[:]) {
		case sigLocal, sigCentral, sigEnd:
			return end + n
		}
	}
	return end + 12
}

// descriptorCRC reads the CRC-32 of the data descriptor at off.
func descriptorCRC(ra io.ReaderAt, off int64) uint32 {
	var b [8]byte
	ra.ReadAt(b[:], off)
	if binary.LittleEndian.Uint32(b[:]) == sigDescriptor {
		return binary.LittleEndian.Uint32(b[4:])
	}
	return binary.LittleEndian.Uint32(b[:])
}

// findStoredEnd finds the length of stored data that ends in a data
// descriptor whose compressed size equals that length, or -1.
func findStoredEnd(ra io.ReaderAt, from, size int64) int64 {
	const chunk = 64 << 10
	buf := make([]byte, chunk+16)
	sig := []byte("PK\x07\x08")
	for off := from; off < size; off += chunk {
		k, _ := ra.ReadAt(buf, off)
		b := buf[:k]
		for i := 0; i+16 <= len(b); {
			j := bytes.Index(b[i:], sig)
			if j < 0 || i+j+16 > len(b) {
				break
			}
			at := off + int64(i+j)
			if int64(binary.LittleEndian.Uint32(b[i+j+8:])) == at-from {
				return at - from
			}
			i += j + 1
		}
		if k < len(buf) {
			break
		}
	}
	return -1
}
