package unpack

import (
	"bytes"
	"fmt"
	"io"
	"slices"
)

const (
	// sampleLen is how much of a text object the sample-based checks
	// read: the English score, quoted-printable detection and the search
	// for embedded encoded strings.
	sampleLen = 1 << 20
	// minEncoded is the fewest alphabet characters a whole-content or
	// embedded decoding needs.
	minEncoded = 16
	// maxTokens caps the embedded encoded-looking strings tried per object.
	maxTokens = 256
	// minROT13 is the fewest letters ROT13 is tried on.
	minROT13 = 8
	// englishLen is how much of an object the English score reads.
	englishLen = 64 << 10
	// alphabetShare is the share of non-whitespace characters that must be
	// in an encoding's alphabet for the whole content to be decoded.
	alphabetShare = 0.95
	// rot13Gain and rot13Floor: ROT13 is kept when the English score of
	// its output is at least rot13Floor and rot13Gain above its input's.
	rot13Gain  = 0.10
	rot13Floor = 0.25
)

// decodeText tries the text decodings on a text object; see the package
// documentation for when each is tried and kept.
func (w *walker) decodeText(n *Node) {
	sample := w.head(n, sampleLen)
	whole := wholeKinds(n.st)
	qp := looksQP(sample)
	uu := hasBeginLine(sample)
	toks := findTokens(sample)
	rot := n.Kind != KindROT13 && rotCandidate(n.st)
	if len(whole) == 0 && !qp && !uu && len(toks) == 0 && !rot {
		return
	}
	if !w.deeper(n, "text decodings") {
		return
	}
	kept := false
	for _, k := range whole {
		if w.try(n, k, k, n.Name+"."+k+"-decoded", w.feedAll(n), false) {
			kept = true
			break
		}
	}
	if qp {
		w.try(n, KindQuotedPrintable, KindQuotedPrintable, n.Name+".qp-decoded", w.feedAll(n), false)
	}
	uuAt := w.uudecode(n)
	if kept {
		return
	}
	toks = slices.DeleteFunc(toks, func(t token) bool {
		return slices.ContainsFunc(uuAt, func(s span) bool { return int64(t.off) >= s.off && int64(t.off) < s.end })
	})
	w.tryTokens(n, sample, toks, whole)
	if rot {
		w.tryROT13(n, sample, len(whole) > 0)
	}
	if n.Size > int64(len(sample)) {
		n.warn("embedded encoded strings and ROT13 were judged on the first %s only", human(int64(len(sample))))
	}
}

// feedAll feeds n's whole content to a decoder.
func (w *walker) feedAll(n *Node) func(io.Writer) error {
	return func(d io.Writer) error { return w.copy(d, n.Content()) }
}

// head reads up to max bytes from the start of n.
func (w *walker) head(n *Node, max int) []byte {
	b := make([]byte, min(n.Size, int64(max)))
	k, _ := n.Content().ReadAt(b, 0)
	return b[:k]
}

// try decodes what feed gives with kind into a candidate child of n and
// keeps it if judge says so. With look set, a candidate judge rejects is
// still kept when it decodes further (ROT13 of base64, say).
func (w *walker) try(n *Node, kind, elem, name string, feed func(io.Writer) error, look bool) bool {
	if !w.room(n, elem+" decoding") {
		return false
	}
	limit, budget := w.limit(n.Size)
	sp := w.newSpool(limit, budget)
	dec := newDecoder(kind, sp)
	err := feed(dec)
	if cerr := dec.Close(); err == nil {
		err = cerr
	}
	if sp.n == 0 {
		w.release(sp.blob())
		w.reject(n, elem, 0, "no output")
		return false
	}
	c := w.child(n, kind, name, "", elem, sp)
	w.settle(c, sp, n.Size, err, kind+" decoding")
	ok, score, why := w.judge(n, c)
	c.Score, c.Why = score, why
	if !ok && look {
		w.expand(c)
		if len(c.Children) > 0 {
			c.Why = fmt.Sprintf("%s, but decodes further as %s", why, c.Children[0].Kind)
			w.adopt(n, c)
			return true
		}
	}
	if !ok {
		w.reject(n, elem, score, why)
		w.discard(c)
		return false
	}
	w.adopt(n, c)
	w.expand(c)
	return true
}

// judge is the keep rule for a decoding c of parent: a new flag match, a
// recognised binary format, or else, for ROT13, a better English score
// and, for the others, a printable ratio of at least textThreshold.
func (w *walker) judge(parent, c *Node) (bool, float64, string) {
	for _, f := range c.Flags {
		if !slices.Contains(parent.Flags, f) {
			return true, 1, "matches the flag pattern"
		}
	}
	if binaryFormat(c.Format) {
		return true, 1, "decodes to " + c.Format + " data"
	}
	if c.Kind == KindROT13 {
		e, pe := english(w.head(c, englishLen)), english(w.head(parent, englishLen))
		if rot13Keeps(e, pe) {
			return true, e, fmt.Sprintf("English score %.2f, up from %.2f", e, pe)
		}
		return false, e, fmt.Sprintf("English score %.2f against %.2f before", e, pe)
	}
	p := c.Printable
	if p >= textThreshold {
		return true, p, fmt.Sprintf("printable %.1f%%", 100*p)
	}
	return false, p, fmt.Sprintf("printable %.1f%%, below %.0f%%", 100*p, 100*textThreshold)
}

func rot13Keeps(e, before float64) bool { return e >= rot13Floor && e >= before+rot13Gain }

// reject counts a decoding that was not kept.
func (w *walker) reject(n *Node, elem string, score float64, why string) {
	n.Attempts++
	if len(n.Rejected) < maxRejected {
		n.Rejected = append(n.Rejected, Attempt{Chain: elem, Score: score, Why: why})
	}
}

// wholeKinds lists the encodings whose alphabet the whole content is in
// (whitespace aside), in the order they are tried: hex, base32, base64.
func wholeKinds(st *stats) []string {
	non := st.n - st.count(" \t\n\r\v\f")
	if non < minEncoded {
		return nil
	}
	in := func(k int64) bool { return float64(k) >= alphabetShare*float64(non) }
	var out []string
	digits, colons := st.count("0123456789abcdefABCDEF"), st.hist[':']
	if digits >= minEncoded && float64(digits) >= alphabetShare*float64(non-colons) && colons <= digits/2 {
		out = append(out, KindHex)
	}
	if st.hist[' ']*64 > non {
		return out // base32 and base64 text has no spaces
	}
	if in(st.count("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=")) || in(st.count("abcdefghijklmnopqrstuvwxyz234567=")) {
		out = append(out, KindBase32)
	}
	alpha := st.count("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
	if in(alpha+st.hist['=']) && (alpha+st.hist['='] < non || alpha%4 != 1) {
		out = append(out, KindBase64)
	}
	return out
}

// rotCandidate: text that is at least half letters, minROT13 or more.
func rotCandidate(st *stats) bool {
	letters := st.count("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
	non := st.n - st.count(" \t\n\r\v\f")
	return letters >= minROT13 && 2*letters >= non
}

// tryROT13 decides on a sample whether rotating is worth it: it is when
// the rotated sample reads as English, when the content looks encoded
// (ROT13 of base64 decodes further) or when the rotated content matches
// the flag pattern; only then is the whole content rotated and judged.
func (w *walker) tryROT13(n *Node, sample []byte, encoded bool) {
	sample = sample[:min(len(sample), englishLen)]
	rs := slices.Clone(sample)
	rot13(rs)
	e, pe := english(rs), english(sample)
	worth := rot13Keeps(e, pe) || encoded && decodesWell(rs)
	if !worth && w.opt.Flag != nil {
		fs := newFlagScanner(w.opt.Flag)
		w.copy(&rot13Decoder{dst: flagSink{fs}}, n.Content())
		fs.flush()
		for _, f := range fs.result() {
			worth = worth || !slices.Contains(n.Flags, f)
		}
	}
	if !worth {
		w.reject(n, KindROT13, e, fmt.Sprintf("English score %.2f against %.2f before", e, pe))
		return
	}
	w.try(n, KindROT13, KindROT13, n.Name+".rot13", w.feedAll(n), encoded)
}

// decodesWell reports whether a sample decodes, with one of the
// encodings whose alphabet it is in, to text or a recognised format.
func decodesWell(sample []byte) bool {
	var st stats
	st.add(sample)
	for _, k := range wholeKinds(&st) {
		var out bytes.Buffer
		d := newDecoder(k, &out)
		d.Write(sample)
		d.Close()
		var ost stats
		ost.add(out.Bytes())
		if ost.printable() >= textThreshold || binaryFormat(sniff(out.Bytes())) {
			return true
		}
	}
	return false
}

// flagSink adapts a flagScanner to io.Writer.
type flagSink struct{ f *flagScanner }

func (s flagSink) Write(p []byte) (int, error) { s.f.Write(p); return len(p), nil }

// token is a run of encoding-alphabet characters inside text.
type token struct {
	off, end int
	kinds    []string
}

// findTokens finds the runs of base64-alphabet characters of at least
// minEncoded characters in b, with their trailing '=' padding; a run goes
// on across a line break when the line so far is 40 characters or more
// (wrapped base64). Each token lists the encodings to try: hex when it is
// all hex digits, base32 when it is all in that alphabet, then base64.
func findTokens(b []byte) []token {
	var out []token
	for i := 0; i < len(b); {
		if base64Values[b[i]] < 0 {
			i++
			continue
		}
		start, line, core := i, i, 0
		hex, b32u, b32l := true, true, true
	run:
		for i < len(b) {
			c := b[i]
			switch {
			case base64Values[c] >= 0:
				core++
				hex = hex && hexValues[c] >= 0
				b32u = b32u && (c >= 'A' && c <= 'Z' || c >= '2' && c <= '7')
				b32l = b32l && (c >= 'a' && c <= 'z' || c >= '2' && c <= '7')
				i++
			case c == '=':
				for i < len(b) && b[i] == '=' {
					i++
				}
				break run
			case (c == '\n' || c == '\r') && i-line >= 40:
				j := i + 1
				if c == '\r' && j < len(b) && b[j] == '\n' {
					j++
				}
				if j >= len(b) || base64Values[b[j]] < 0 {
					break run
				}
				i, line = j, j
			default:
				break run
			}
		}
		if core < minEncoded {
			continue
		}
		t := token{off: start, end: i}
		if hex {
			t.kinds = append(t.kinds, KindHex)
		}
		if b32u || b32l {
			t.kinds = append(t.kinds, KindBase32)
		}
		t.kinds = append(t.kinds, KindBase64)
		out = append(out, t)
	}
	return out
}

// tryTokens decodes the embedded tokens of n; a token that spans nearly
// all of n was already tried as a whole-content decoding of those kinds.
func (w *walker) tryTokens(n *Node, sample []byte, toks []token, whole []string) {
	for i, t := range toks {
		if i == maxTokens {
			n.warn("%d more embedded encoded-looking strings not tried (at most %d per object)", len(toks)-i, maxTokens)
			return
		}
		span := sample[t.off:t.end]
		for _, k := range t.kinds {
			if 10*int64(len(span)) >= 9*n.Size && slices.Contains(whole, k) {
				continue
			}
			elem := fmt.Sprintf("%s@%d", k, t.off)
			feed := func(d io.Writer) error { _, err := d.Write(span); return err }
			if w.try(n, k, elem, fmt.Sprintf("%s@%d.%s-decoded", n.Name, t.off, k), feed, false) {
				break
			}
		}
	}
}

// looksQP detects quoted-printable: escapes "=XX" (upper-case hex) with
// either a soft line break ("=" at a line end) or, among at least three
// escapes, half or more that encode what QP must escape (bytes from 0x80,
// '=', space or tab); "x=10" in a config file is not enough.
func looksQP(b []byte) bool {
	soft, esc, strong := 0, 0, 0
	upper := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '=' {
			continue
		}
		switch {
		case b[i+1] == '\n' || b[i+1] == '\r' && i+2 < len(b) && b[i+2] == '\n':
			soft++
		case i+2 < len(b) && upper(b[i+1]) && upper(b[i+2]):
			esc++
			v := byte(hexValues[b[i+1]])<<4 | byte(hexValues[b[i+2]])
			if v >= 0x80 || v == '=' || v == ' ' || v == '\t' {
				strong++
			}
		}
	}
	return esc > 0 && (soft > 0 || esc >= 3 && 2*strong >= esc)
}
