package unpack

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

const plain = "Congratulations, you found the hidden message. The flag is flag{layered_encodings_4_the_win} and that is all there is to it.\n"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
func b32(s string) string { return base32.StdEncoding.EncodeToString([]byte(s)) }
func hx(s string) string  { return hex.EncodeToString([]byte(s)) }
func r13(s string) string {
	b := []byte(s)
	rot13(b)
	return string(b)
}

// Real encoder output: Python's quopri.encodestring and binascii.b2a_uu.
const (
	realQP = "Bonjour =C3=A0 tous,\n" +
		"Voici le r=C3=A9sum=C3=A9 de la r=C3=A9union: le mot de passe est flag{qp_c=\n" +
		"af=C3=A9_cr=C3=A8me} et il expire =C3=A0 18h. Merci de ne pas le partager =\n" +
		"=3D c'est confidentiel.\n"
	realQPDecoded = "Bonjour à tous,\nVoici le résumé de la réunion: le mot de passe est flag{qp_café_crème} et il expire à 18h. Merci de ne pas le partager = c'est confidentiel.\n"
	realUU        = "Subject: files\n\nbegin 644 secret.txt\n" +
		"M5&AE('5U96YC;V1E9\"!S96-R970@:7,@9FQA9WMU=5]O;&1?<V-H;V]L?2 M\n" +
		"M+2!K965P(&ET('-A9F4L('1H:7,@;&EN92!I<R!L;VYG(&5N;W5G:\"!T;R!N\n" +
		"/965D('1W;R!L:6YE<RX*\n" +
		"`\nend\n"
	realUUDecoded = "The uuencoded secret is flag{uu_old_school} -- keep it safe, this line is long enough to need two lines.\n"
)

func TestTextDecodings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		kinds []string // decode chain below the root
		want  string   // the leaf's content
	}{
		{"base64", b64(plain), []string{"base64"}, plain},
		{"url-safe base64 without padding", base64.RawURLEncoding.EncodeToString([]byte(plain + "\xfb\xff")), []string{"base64"}, plain + "\xfb\xff"},
		{"base32", b32(plain), []string{"base32"}, plain},
		{"hex", hx(plain), []string{"hex"}, plain},
		{"hex dump with spaces", spaced(hx(plain)), []string{"hex"}, plain},
		{"rot13", r13(plain), []string{"rot13"}, plain},
		{"quoted-printable", realQP, []string{"quoted-printable"}, realQPDecoded},
		{"uuencode", realUU, []string{"uuencode:secret.txt"}, realUUDecoded},
		{"uuencode base64 variant", "begin-base64 600 key.txt\n" + wrap(b64(plain), 60) + "====\n", []string{"uuencode:key.txt"}, plain},
		{"base64 of hex", b64(hx(plain)), []string{"base64", "hex"}, plain},
		{"hex of base64", hx(b64(plain)), []string{"hex", "base64"}, plain},
		{"base32 of base64", b32(b64(plain)), []string{"base32", "base64"}, plain},
		{"base64 of base64", b64(b64(plain)), []string{"base64", "base64"}, plain},
		{"base64 of rot13", b64(r13(plain)), []string{"base64", "rot13"}, plain},
		{"rot13 of base64", r13(b64(plain)), []string{"rot13", "base64"}, plain},
		{"base64 of gzip", b64(string(gz(t, []byte(plain)))), []string{"base64", "gzip"}, plain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := walk(t, "in.txt", []byte(tc.input), Options{})
			checkTree(t, root)
			leaves := find(root, func(n *Node) bool { return string(content(t, n)) == tc.want })
			if len(leaves) != 1 {
				t.Fatalf("decoded text in %d nodes, want 1:\n%s", len(leaves), dump(root))
			}
			if got := leaves[0].Chain[1:]; !slices.Equal(got, tc.kinds) {
				t.Errorf("chain %q, want %q:\n%s", got, tc.kinds, dump(root))
			}
			if w := allWarnings(root); w != "" {
				t.Errorf("unexpected warnings:\n%s", w)
			}
		})
	}
}

func spaced(h string) string {
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		sb.WriteString(h[i:i+2] + " ")
		if i%32 == 30 {
			sb.WriteString("\n")
		}
	}
	return sb.String()
}

// Decoys: text that passes the alphabet test but decodes to garbage is
// not kept, and the attempt is counted with its score.
func TestDecoysNotKept(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(9))
	letters := make([]byte, 4000)
	for i := range letters {
		letters[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[rng.Intn(52)]
	}
	tests := []struct {
		name, input string
		rejected    string // a chain element that must be among the rejections
	}{
		{"random letters", wrap(string(letters), 64), "base64"},
		{"decimal digits", strings.Repeat("31415926535897932384626433832795", 20), "hex"},
		{"a sha256 in prose", "The download checks out against 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 as expected, nothing else.", "hex@32"},
		{"english prose", strings.Repeat("It was the best of times, it was the worst of times. ", 20), "rot13"},
		{"config with key=value", "timeout=10\nretries=3\nname=server-one\nmode=FF\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := walk(t, "decoy.txt", []byte(tc.input), Options{Flag: flagRE})
			if len(root.Children) != 0 {
				t.Errorf("decoy kept:\n%s", dump(root))
			}
			if tc.rejected == "" {
				return
			}
			i := slices.IndexFunc(root.Rejected, func(a Attempt) bool { return a.Chain == tc.rejected })
			if root.Attempts == 0 || i < 0 {
				t.Fatalf("Attempts %d, Rejected %+v: want %s among them", root.Attempts, root.Rejected, tc.rejected)
			}
			if a := root.Rejected[i]; a.Score >= textThreshold || a.Why == "" {
				t.Errorf("rejection %+v: want a score below %v and a reason", a, textThreshold)
			}
		})
	}
}

// A decoding is kept for a flag match even when it is mostly binary.
func TestFlagKeepsBinaryDecoding(t *testing.T) {
	t.Parallel()
	payload := append(bytes.Repeat([]byte{0, 1, 2, 0xff}, 40), "flag{binary_around_me}"...)
	in := "blob: " + b64(string(payload)) + "\n"
	root := walk(t, "x", []byte(in), Options{Flag: flagRE})
	got := withFlag(root, "flag{binary_around_me}")
	if len(got) != 1 || got[0].Why != "matches the flag pattern" || got[0].Printable >= textThreshold {
		t.Fatalf("flag decoding not kept by the flag rule:\n%s", dump(root))
	}
	// Without the pattern the same decoding is judged on printability.
	root = walk(t, "x", []byte(in), Options{})
	if len(root.Children) != 0 {
		t.Errorf("binary decoding kept without a flag pattern:\n%s", dump(root))
	}
}

// ROT13 is kept on a flag match even when the text is too short to score.
func TestROT13ByFlag(t *testing.T) {
	t.Parallel()
	root := walk(t, "x", []byte("synt{ebg_guvegrra}"), Options{Flag: flagRE})
	if got := withFlag(root, "flag{rot_thirteen}"); len(got) != 1 || got[0].Kind != KindROT13 {
		t.Fatalf("rot13 flag not found:\n%s", dump(root))
	}
}

func TestDepthLimitWarns(t *testing.T) {
	t.Parallel()
	s := plain
	for range 5 {
		s = b64(s)
	}
	root := walk(t, "deep", []byte(s), Options{MaxDepth: 3})
	if got := find(root, func(n *Node) bool { return n.Depth > 3 }); len(got) > 0 {
		t.Errorf("nodes below MaxDepth:\n%s", dump(root))
	}
	if w := allWarnings(root); !strings.Contains(w, "depth limit of 3 reached") {
		t.Errorf("no depth warning:\n%s", w)
	}
	root = walk(t, "deep", []byte(s), Options{})
	if got := find(root, func(n *Node) bool { return string(content(t, n)) == plain }); len(got) != 1 || got[0].Depth != 5 {
		t.Errorf("five base64 layers not all decoded:\n%s", dump(root))
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	in := []byte("id=" + b64("hello world, how are you") + "= next line\nshort abc " + hx("0123456789") + "\n" + b32("ABCDEFGHIJ") + "\n")
	var got []string
	for _, tk := range findTokens(in) {
		got = append(got, string(in[tk.off:tk.end])+" "+strings.Join(tk.kinds, ","))
	}
	want := []string{
		b64("hello world, how are you") + "= base64",
		hx("0123456789") + " hex,base64",
		b32("ABCDEFGHIJ") + " base32,base64",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findTokens = %q, want %q", got, want)
	}
}
