package httpx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"noops/internal/forensics/proto"
)

// decoded is a body with its content codings removed.
type decoded struct {
	data     io.ReaderAt
	size     int64
	buf      *proto.Buffer // owns data when not nil
	applied  []string
	notes    []string
	complete bool // every coding decoded to its end
}

// contentCodings lists Content-Encoding's codings in the order they were
// applied, "identity" left out.
func contentCodings(values []string) []string {
	var out []string
	for _, v := range values {
		for _, c := range strings.Split(v, ",") {
			c = proto.ASCIILower(strings.TrimSpace(c))
			if c != "" && c != "identity" {
				out = append(out, c)
			}
		}
	}
	return out
}

// decode removes the codings (last applied first) from src. A coding it
// cannot decode, or one that fails before giving any byte, leaves the
// body as it was with a note; one that fails part way keeps what it gave.
func decode(src io.ReaderAt, size int64, codings []string, opt Options) decoded {
	d := decoded{data: src, size: size, complete: true}
	if len(codings) == 0 {
		return d
	}
	r := io.Reader(io.NewSectionReader(src, 0, size))
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for i := len(codings) - 1; i >= 0; i-- {
		c := codings[i]
		dr, closeFn, err := decoder(c, r, opt)
		if err != nil {
			d.notes = append(d.notes, fmt.Sprintf("Content-Encoding %s not decoded: %v; the body is kept encoded", c, err))
			return d
		}
		if closeFn != nil {
			closers = append(closers, closeFn)
		}
		r = dr
	}
	buf := proto.NewBuffer(opt.TempDir, opt.MemLimit)
	n, cut, err := proto.CopyLimit(buf, r, opt.MaxBodyBytes)
	all := strings.Join(codings, ", ")
	switch {
	case err != nil && n == 0:
		buf.Close()
		d.notes = append(d.notes, fmt.Sprintf("Content-Encoding %s: decoding failed at once (%v); the body is kept encoded", all, cause(err)))
		return d
	case err != nil:
		d.notes = append(d.notes, fmt.Sprintf("Content-Encoding %s: the stream breaks after %d decoded bytes (%v); the rest is lost", all, n, cause(err)))
		d.complete = false
	case cut:
		d.notes = append(d.notes, fmt.Sprintf("decoded body cut at %d bytes (the size limit); the rest was not decoded", n))
		d.complete = false
	}
	d.data, d.size, d.buf = buf, buf.Size(), buf
	for i := len(codings) - 1; i >= 0; i-- {
		d.applied = append(d.applied, codings[i])
	}
	return d
}

func cause(err error) error {
	var fe interface{ Unwrap() error }
	for errors.As(err, &fe) {
		inner := fe.Unwrap()
		if inner == nil {
			break
		}
		err = inner
	}
	return err
}

// decoder returns a reader that removes one coding.
func decoder(coding string, r io.Reader, opt Options) (io.Reader, func(), error) {
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("reading gzip header: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case "deflate":
		// "deflate" is zlib-wrapped by the RFC but raw DEFLATE from some
		// servers: look at the zlib header.
		br := bufio.NewReader(r)
		head, _ := br.Peek(2)
		if len(head) == 2 && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, nil, fmt.Errorf("reading zlib header: %w", err)
			}
			return zr, func() { zr.Close() }, nil
		}
		fr := flate.NewReader(br)
		return fr, func() { fr.Close() }, nil
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(opt.MaxBodyBytes, 1<<20))),
			zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return nil, nil, fmt.Errorf("starting zstd: %w", err)
		}
		return zr, zr.Close, nil
	case "br":
		return nil, nil, errors.New("Brotli has no decoder in the Go standard library or this build")
	}
	return nil, nil, fmt.Errorf("unknown coding %q", coding)
}
