package unpack

import "io"

// decoder is a streaming text decoding: it writes the decoded bytes of
// what it is given to its destination; Close flushes what is pending.
// Decoders are lenient: a character outside the alphabet is skipped, a
// broken escape is kept as it is, so that the score decides.
type decoder interface {
	io.Writer
	Close() error
}

// newDecoder returns the decoder of kind writing to dst, or nil.
func newDecoder(kind string, dst io.Writer) decoder {
	switch kind {
	case KindBase64:
		return &bitDecoder{dst: dst, val: &base64Values, width: 6, pad: true}
	case KindBase32:
		return &bitDecoder{dst: dst, val: &base32Values, width: 5, pad: true}
	case KindHex:
		return &bitDecoder{dst: dst, val: &hexValues, width: 4}
	case KindROT13:
		return &rot13Decoder{dst: dst}
	case KindQuotedPrintable:
		return &qpDecoder{dst: dst}
	}
	return nil
}

// Alphabets: -1 marks a byte outside. Base64 takes both the standard and
// the URL-safe alphabet; base32 and hex either case.
var base64Values, base32Values, hexValues = func() (b64, b32, hx [256]int8) {
	for i := range 256 {
		b64[i], b32[i], hx[i] = -1, -1, -1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range len(std) {
		b64[std[i]] = int8(i)
	}
	b64['-'], b64['_'] = 62, 63
	const b32a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	for i := range len(b32a) {
		b32[b32a[i]] = int8(i)
		if i < 26 {
			b32[b32a[i]+'a'-'A'] = int8(i)
		}
	}
	const hexa = "0123456789abcdef"
	for i := range len(hexa) {
		hx[hexa[i]] = int8(i)
		if i >= 10 {
			hx[hexa[i]-'a'+'A'] = int8(i)
		}
	}
	return
}()

// bitDecoder decodes base64, base32 and hex by accumulating width bits per
// alphabet character and emitting whole bytes. For the padded encodings a
// '=' ends a group: leftover bits are dropped and the next character
// starts afresh, so concatenated padded blobs decode right. For hex, "0x"
// prefixes are dropped.
type bitDecoder struct {
	dst   io.Writer
	val   *[256]int8
	width uint
	pad   bool
	acc   uint32
	bits  uint
	prev  byte
	out   []byte
}

func (d *bitDecoder) Write(p []byte) (int, error) {
	out := d.out[:0]
	for _, c := range p {
		v := d.val[c]
		switch {
		case v >= 0:
			d.acc = d.acc<<d.width | uint32(v)
			d.bits += d.width
			if d.bits >= 8 {
				d.bits -= 8
				out = append(out, byte(d.acc>>d.bits))
				d.acc &= 1<<d.bits - 1
			}
		case c == '=' && d.pad:
			d.acc, d.bits = 0, 0
		case (c == 'x' || c == 'X') && d.width == 4 && d.prev == '0' && d.bits == 4:
			d.acc, d.bits = 0, 0
		}
		d.prev = c
		if len(out) >= 32<<10 {
			if _, err := d.dst.Write(out); err != nil {
				return 0, err
			}
			out = out[:0]
		}
	}
	d.out = out
	if len(out) > 0 {
		if _, err := d.dst.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (d *bitDecoder) Close() error { return nil }

// rot13Decoder rotates ASCII letters by 13.
type rot13Decoder struct {
	dst io.Writer
	out []byte
}

func (d *rot13Decoder) Write(p []byte) (int, error) {
	d.out = append(d.out[:0], p...)
	rot13(d.out)
	if _, err := d.dst.Write(d.out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (d *rot13Decoder) Close() error { return nil }

func rot13(p []byte) {
	for i, c := range p {
		switch {
		case c >= 'a' && c <= 'z':
			p[i] = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			p[i] = 'A' + (c-'A'+13)%26
		}
	}
}

// qpDecoder decodes quoted-printable (RFC 2045): "=XX" is a byte, "="
// before a line end is a soft break, anything else passes; a broken
// escape is kept literally.
type qpDecoder struct {
	dst   io.Writer
	state int // 0 text, 1 after '=', 2 after '=' and a hex digit, 3 after "=\r"
	h1    byte
	out   []byte
}

func (d *qpDecoder) Write(p []byte) (int, error) {
	out := d.out[:0]
	for _, c := range p {
		switch d.state {
		case 0:
			if c == '=' {
				d.state = 1
			} else {
				out = append(out, c)
			}
		case 1:
			switch {
			case hexValues[c] >= 0:
				d.h1, d.state = c, 2
			case c == '\n':
				d.state = 0
			case c == '\r':
				d.state = 3
			case c == '=':
				out = append(out, '=')
			default:
				out = append(out, '=', c)
				d.state = 0
			}
		case 2:
			if v := hexValues[c]; v >= 0 {
				out = append(out, byte(hexValues[d.h1])<<4|byte(v))
			} else {
				out = append(out, '=', d.h1, c)
			}
			d.state = 0
		case 3:
			d.state = 0
			if c != '\n' {
				out = append(out, c)
			}
		}
	}
	d.out = out
	if _, err := d.dst.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (d *qpDecoder) Close() error {
	var tail []byte
	switch d.state {
	case 1:
		tail = []byte{'='}
	case 2:
		tail = []byte{'=', d.h1}
	}
	d.state = 0
	if len(tail) == 0 {
		return nil
	}
	_, err := d.dst.Write(tail)
	return err
}
