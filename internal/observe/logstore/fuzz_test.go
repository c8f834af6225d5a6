package logstore

import (
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// FuzzDecodeBlock feeds damaged block bodies and frames to the decoders:
// they must return an error or records, never panic or allocate without
// bound.
func FuzzDecodeBlock(f *testing.F) {
	zenc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true))
	zdec, _ := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxRawBlock), zstd.WithDecoderConcurrency(1))
	recs := []Record{
		access(1, "shop"), access(2, "api"),
		{Time: t0, App: "a", Stream: StreamStdout, Line: "hello", TraceID: "x", SpanID: "00f067aa0ba902b7", Truncated: true},
		{Time: t0.Add(-time.Hour), Stream: StreamPlatform, Severity: "INFO", Line: `{"k":1}`},
	}
	for i := range recs {
		recs[i].sanitize(DefaultMaxLine)
	}
	for _, e := range []*encoder{newEncoder(zenc), newEncoder(nil)} {
		for n := range len(recs) + 1 {
			body, raw := e.encode(recs[:n])
			var m blockMeta
			idx := buildIndex(recs[:n], codecZstd, 7, raw, &m)
			f.Add(append([]byte(nil), body...), append([]byte(nil), appendFrame(nil, idx, body)...))
		}
	}
	dc := decoder{zdec}
	f.Fuzz(func(t *testing.T, body, frame []byte) {
		if recs, err := dc.decode(body); err == nil {
			for _, r := range recs {
				_ = r.String()
			}
		}
		var m blockMeta
		_ = parseIndex(body, &m)
		metas, _, _, _ := scanFrames(readerAt(frame), "fuzz", int64(len(frame)), true)
		for _, m := range metas {
			if b, err := readBody(readerAt(frame), m); err == nil {
				dc.decode(b)
			}
			if bl, err := readBloom(readerAt(frame), m); err == nil {
				bloomTest(bl, m.bloomK, "4bf92f3577b34da6a3ce929d0e0e4736")
			}
		}
	})
}

type readerAt []byte

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(r)) {
		return 0, errShort
	}
	n := copy(p, r[off:])
	if n < len(p) {
		return n, errShort
	}
	return n, nil
}

var errShort = errCorrupt
