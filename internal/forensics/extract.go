package forensics

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"noops/internal/errkind"
	"noops/internal/forensics/flow"
	"noops/internal/forensics/pcap"
	"noops/internal/forensics/proto/ftp"
	"noops/internal/forensics/proto/httpx"
	"noops/internal/forensics/proto/smtp"
	"noops/internal/forensics/proto/tftp"
	"noops/internal/forensics/stream"
)

// Options configure Extract. The zero value works.
type Options struct {
	// Flag, if set, is searched for in every object and everything
	// unpacked or decoded from it; a decoding whose output matches it is
	// always kept.
	Flag *regexp.Regexp
	// Progress, if set, is called as the capture is read with the bytes
	// read so far and the file's size.
	Progress func(done, total int64)
	// MaxDepth bounds nested captures and the unpacking of each object
	// (default 8): a capture inside a capture counts one level, and the
	// objects of a nested capture unpack that much less deep.
	MaxDepth int
	// MaxOutput caps the bytes written under the output directory
	// (default 4 GiB plus 16 times the capture's size); files that would
	// pass it are not written, with a warning.
	MaxOutput int64
	// TempDir holds spill files of reassembly, decoding and unpacking
	// ("" means os.TempDir()); they are removed before Extract returns.
	TempDir string
	// Logger, if set, receives a line per stage.
	Logger *slog.Logger
}

// DefaultMaxDepth is MaxDepth's default.
const DefaultMaxDepth = 8

// idleTimeout is how long, in capture time, a connection may pause
// before it is handed out as finished: long, since CTF captures are
// stitched from sessions with pauses, and a connection handed out early
// would be split in two.
const idleTimeout = time.Hour

// maxDatagramBytes bounds the UDP payloads held for TFTP.
const maxDatagramBytes = 256 << 20

// Extract reads the capture at capturePath, reassembles its TCP
// connections, extracts the files of FTP, HTTP/1.x, SMTP and TFTP
// transfers, writes each under outDir/objects/<protocol>/ with its
// unpacked and decoded tree beside it (<file>.unpacked/...), extracts
// captures found inside recursively (<file>.extracted/...), and writes
// outDir/manifest.json (the Report) and outDir/summary.txt.
//
// A capture that cannot be opened is an error. Damage found while
// reading (a truncated file, a corrupt block, gaps in streams) gives a
// partial Report whose Warnings say what was lost, and no error. When
// ctx ends, the Report holds what was done and the error says so.
func Extract(ctx context.Context, capturePath, outDir string, opt Options) (*Report, error) {
	start := time.Now()
	if opt.MaxDepth <= 0 {
		opt.MaxDepth = DefaultMaxDepth
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := os.Open(capturePath)
	if err != nil {
		return nil, errkind.E(fileKind(err), fmt.Errorf("opening the capture: %w", err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errkind.E(fileKind(err), fmt.Errorf("reading the capture %s: %w", capturePath, err))
	}
	if !fi.Mode().IsRegular() {
		return nil, errkind.Errorf(errkind.Invalid, "reading the capture %s: not a regular file", capturePath)
	}
	if opt.MaxOutput <= 0 {
		opt.MaxOutput = 4<<30 + 16*fi.Size()
	}
	sum := sha256.New()
	in := io.TeeReader(f, sum)
	rd, err := pcap.Open(in)
	if err != nil {
		return nil, errkind.WithHint(errkind.Invalid, fmt.Errorf("reading the capture %s: %w", capturePath, err),
			"noops pcap reads pcap and pcapng files, also gzipped")
	}
	out, err := openOutput(outDir, opt.MaxOutput)
	if err != nil {
		return nil, err
	}
	defer out.Close()

	x := &extraction{ctx: ctx, opt: opt, out: out,
		report: &Report{Capture: capturePath, Objects: []Entry{}, Stats: Stats{Bytes: fi.Size(), Objects: map[string]int{}}}}
	name := filepath.Base(capturePath)
	c := &captureRun{label: name, chain: []string{name}, dir: "objects"}
	if opt.Progress != nil {
		total := fi.Size()
		c.progress = func() { opt.Progress(rd.Progress(), total) }
	}
	var s sink
	frames, st, cerr := x.capture(c, rd, &s)
	x.merge(&s)
	x.report.Frames = frames
	x.report.Stats.Format = st.Format
	x.report.Stats.Skipped = st.Skipped
	x.report.Stats.Frames = st.Frames
	x.report.Stats.Packets = st.Decoded
	// Hash what the reader did not consume (it stops at a damaged tail).
	if _, err := io.Copy(sum, f); err != nil {
		x.report.Warnings = append(x.report.Warnings, fmt.Sprintf("%s: hashing the capture: %v", name, err))
	}
	x.report.SHA256 = hex.EncodeToString(sum.Sum(nil))
	if opt.Progress != nil {
		opt.Progress(fi.Size(), fi.Size())
	}
	x.report.Stats.Files = out.files
	x.report.Stats.Written = out.written
	x.report.Stats.Seconds = time.Since(start).Seconds()
	if err := x.writeReport(); err != nil {
		return x.report, err
	}
	opt.Logger.Info("pcap extract", "capture", capturePath, "frames", frames, "files", out.files,
		"flags", len(x.report.Flags), "warnings", len(x.report.Warnings), "seconds", x.report.Stats.Seconds)
	return x.report, cerr
}

// fileKind classifies an error opening the capture.
func fileKind(err error) errkind.Kind {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errkind.NotFound
	case errors.Is(err, fs.ErrPermission):
		return errkind.Permission
	}
	return errkind.Invalid
}

// extraction is the state of one Extract: the output, the report, and
// the options.
type extraction struct {
	ctx    context.Context
	opt    Options
	out    *output
	report *Report
}

// sink collects what one part of the extraction found (a capture's
// reading, one object and everything below it), so that parts done in
// parallel merge into the Report in a fixed order.
type sink struct {
	objects  []Entry
	flags    []FlagHit
	warnings []string
	protos   map[string]int
	captures int
	parts    []*sink // merged after this one's own findings
}

// warn adds a warning about what (a capture or an output path).
func (s *sink) warn(what, format string, args ...any) {
	s.warnings = append(s.warnings, what+": "+fmt.Sprintf(format, args...))
}

// absorb appends what inner found, its parts included, to s.
func (s *sink) absorb(inner *sink) {
	s.objects = append(s.objects, inner.objects...)
	s.flags = append(s.flags, inner.flags...)
	s.warnings = append(s.warnings, inner.warnings...)
	for p, n := range inner.protos {
		if s.protos == nil {
			s.protos = map[string]int{}
		}
		s.protos[p] += n
	}
	s.captures += inner.captures
	for _, part := range inner.parts {
		s.absorb(part)
	}
}

// merge adds what s found to the report, warnings said twice once.
func (x *extraction) merge(s *sink) {
	seen := map[string]bool{}
	for _, w := range x.report.Warnings {
		seen[w] = true
	}
	var walk func(s *sink)
	walk = func(s *sink) {
		x.report.Objects = append(x.report.Objects, s.objects...)
		x.report.Flags = append(x.report.Flags, s.flags...)
		for _, w := range s.warnings {
			if !seen[w] {
				seen[w] = true
				x.report.Warnings = append(x.report.Warnings, w)
			}
		}
		for p, n := range s.protos {
			x.report.Stats.Objects[p] += n
		}
		x.report.Stats.Captures += s.captures
		for _, part := range s.parts {
			walk(part)
		}
	}
	walk(s)
}

// captureRun is one capture being extracted: the top one or one found
// inside an object.
type captureRun struct {
	label    string   // for warnings: the file name, or the nested capture's output path
	chain    []string // the decode chain down to the capture
	dir      string   // where its objects go
	path     string   // the nested capture's output path; "" for the top capture
	depth    int      // captures above this one
	progress func()
}

// capture reads one capture, reassembles it, extracts its objects and
// writes them, reporting into s. It returns the frames read, the
// reader's stats and the context's error if it ended.
func (x *extraction) capture(c *captureRun, rd *pcap.Reader, s *sink) (int, pcap.Stats, error) {
	log := x.opt.Logger.With("capture", c.label)
	var (
		conns      []*flow.Conn
		dgrams     []flow.Datagram
		dgramBytes int64
		dgramLost  int
	)
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	asm := stream.New(stream.Options{TempDir: x.opt.TempDir, IdleTimeout: idleTimeout},
		func(cn *flow.Conn) { conns = append(conns, cn) },
		func(d flow.Datagram) {
			if dgramBytes+int64(len(d.Payload)) > maxDatagramBytes {
				dgramLost++
				return
			}
			dgramBytes += int64(len(d.Payload))
			dgrams = append(dgrams, d)
		})
	var sp stream.Packet
	var lastProgress int64 = -1
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := x.ctx.Err(); err != nil {
				asm.Close()
				return rd.Stats().Frames, rd.Stats(), fmt.Errorf("reading %s: %w", c.label, err)
			}
		}
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.warn(c.label, "reading stopped after frame %d (%v): the rest of the capture is lost", rd.Stats().Frames, err)
			break
		}
		if c.progress != nil {
			if done := rd.Progress(); done-lastProgress >= 1<<20 {
				lastProgress = done
				c.progress()
			}
		}
		if p.Proto == stream.ProtoUDP && !maybeTFTP(p.Payload) {
			continue
		}
		sp = stream.Packet{Frame: p.Frame, Time: p.Time, Src: p.Src, Dst: p.Dst, Proto: p.Proto,
			Seq: p.Seq, Ack: p.Ack, SYN: p.SYN, ACK: p.ACK, FIN: p.FIN, RST: p.RST, PSH: p.PSH,
			Payload: p.Payload, Truncated: p.Truncated, WireLen: p.WireLen}
		asm.Add(&sp)
	}
	asm.Flush()
	st := rd.Stats()
	for _, w := range rd.Warnings() {
		s.warn(c.label, "%s", w)
	}
	for _, w := range asm.Warnings() {
		s.warn(c.label, "%s", w)
	}
	if dgramLost > 0 {
		s.warn(c.label, "%d UDP datagrams not examined for TFTP: more than %d bytes of them", dgramLost, maxDatagramBytes)
	}
	if c.depth == 0 {
		x.report.Stats.Connections = len(conns)
		x.report.Stats.Datagrams = len(dgrams)
	}
	log.Debug("reassembled", "frames", st.Frames, "connections", len(conns), "datagrams", len(dgrams))

	objs := x.protocols(c, conns, dgrams, s)
	defer func() {
		for _, o := range objs {
			o.Close()
		}
	}()
	err := x.objects(c, objs, s)
	log.Debug("extracted", "objects", len(objs))
	return st.Frames, st, err
}

// protocols runs the four extractors and returns their objects in the
// order of their first frame.
func (x *extraction) protocols(c *captureRun, conns []*flow.Conn, dgrams []flow.Datagram, s *sink) []*flow.Object {
	var objs []*flow.Object
	add := func(proto string, o []*flow.Object, ws []flow.Warning) {
		objs = append(objs, o...)
		for _, w := range ws {
			s.warn(c.label, "%s: %s", proto, w)
		}
	}
	o, w := ftp.Extract(conns)
	add("ftp", o, w)
	o, w = httpx.Extract(conns, httpx.Options{TempDir: x.opt.TempDir})
	add("http", o, w)
	o, w = smtp.Extract(conns)
	add("smtp", o, w)
	o, w = tftp.Extract(dgrams)
	add("tftp", o, w)
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].Frames.First < objs[j].Frames.First })
	return objs
}

// maybeTFTP keeps the UDP datagrams whose first bytes are a TFTP opcode
// (1 RRQ to 6 OACK): nothing else can be TFTP, and other UDP (DNS,
// QUIC, syslog) would only take memory.
func maybeTFTP(p []byte) bool {
	return len(p) >= 4 && p[0] == 0 && p[1] >= 1 && p[1] <= 6
}

// writeReport writes manifest.json and summary.txt.
func (x *extraction) writeReport() error {
	js, err := json.MarshalIndent(x.report, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the manifest: %w", err)
	}
	if err := x.out.writeFile("manifest.json", append(js, '\n')); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	var b bytes.Buffer
	if err := x.report.WriteSummary(&b, -1); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	if err := x.out.writeFile("summary.txt", b.Bytes()); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	return nil
}
