package main

// The objects carried in the captures: random bytes or text, made from a
// seed of their own so that the same seed gives the same files whatever
// the order of the sessions.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// object is a file a transfer in a capture carries, with its known
// digest: what a correct extractor writes.
type object struct {
	Protocol string `json:"protocol"` // http, ftp, smtp, tftp
	Name     string `json:"name"`
	Size     int    `json:"size"`
	SHA256   string `json:"sha256"`
	// WireSHA256 is the digest of the bytes as sent when the protocol
	// encodes them (HTTP Content-Encoding: gzip): an extractor that keeps
	// the encoding writes this one.
	WireSHA256 string `json:"wire_sha256,omitempty"`
	// MessageSHA256 is the digest of the mail message that carried the
	// object as an attachment (what tshark's imf export writes).
	MessageSHA256 string `json:"message_sha256,omitempty"`
	Encoding      string `json:"encoding,omitempty"` // "gzip", "chunked", "gzip+chunked", "base64"
	Upload        bool   `json:"upload,omitempty"`   // FTP STOR
	data          []byte
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// spec says which object to make.
type spec struct {
	name    string
	size    int
	text    bool
	gzip    bool // HTTP Content-Encoding
	chunked bool // HTTP Transfer-Encoding
	upload  bool // FTP STOR instead of RETR
	seed    uint64
}

// make returns the object's bytes and its digest.
func (s spec) make(protocol string) *object {
	rng := rand.New(rand.NewChaCha8(seedBytes(s.seed)))
	var data []byte
	if s.text {
		data = textBytes(rng, s.size)
	} else {
		data = make([]byte, s.size)
		for i := 0; i < len(data); i += 8 {
			v := rng.Uint64()
			for j := i; j < min(i+8, len(data)); j++ {
				data[j] = byte(v)
				v >>= 8
			}
		}
	}
	return &object{Protocol: protocol, Name: s.name, Size: len(data), SHA256: digest(data), Upload: s.upload, data: data}
}

func seedBytes(seed uint64) [32]byte {
	var b [32]byte
	for i := range 4 {
		v := seed*0x9e3779b97f4a7c15 + uint64(i)*0xbf58476d1ce4e5b9
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	return b
}

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or
his from at which but have an they you were her she there been one all we their has would when if so no
will more can said what about up out them into some could time him only then other than its two like
these may first any new my made over such after most where did our way even because many before must
through back years much well should still own see long here between both life being under never day same
another know while last might us great old year off come since against go came right used take three
packet frame stream segment server client request response header body archive capture evidence flag`)

// textBytes returns size bytes of lines of words.
func textBytes(rng *rand.Rand, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 16)
	line := 0
	for b.Len() < size {
		w := words[rng.IntN(len(words))]
		if line+len(w) > 72 {
			b.WriteByte('\n')
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.Bytes()[:size]
}

// gzipped returns data compressed with gzip at the fastest level.
func gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return b.Bytes()
}
