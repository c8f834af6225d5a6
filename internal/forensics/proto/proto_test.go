package proto

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"noops/internal/forensics/flow"
)

func TestAssembly(t *testing.T) {
	t.Parallel()
	src := []byte("0123456789abcdefghij")
	r := bytes.NewReader(src)
	tests := []struct {
		name     string
		adds     [][3]int64 // off, roff, n
		size     int64      // SetSize, 0 = none
		want     string
		gaps     []flow.Range
		overlaps []flow.Range
	}{
		{name: "in order", adds: [][3]int64{{0, 0, 5}, {5, 5, 5}}, want: "0123456789"},
		{name: "out of order with a hole", adds: [][3]int64{{6, 6, 4}, {0, 0, 3}}, want: "012\x00\x00\x006789", gaps: []flow.Range{{Start: 3, End: 6}}},
		{name: "the first copy wins", adds: [][3]int64{{2, 2, 4}, {0, 10, 8}}, want: "ab2345gh",
			overlaps: []flow.Range{{Start: 2, End: 6}}},
		{name: "a tail past the size", adds: [][3]int64{{0, 0, 4}}, size: 6, want: "0123\x00\x00", gaps: []flow.Range{{Start: 4, End: 6}}},
		{name: "hostile offset ignored", adds: [][3]int64{{MaxOffset + 1, 0, 4}, {0, 0, 2}}, want: "01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := &Assembly{}
			var ov []flow.Range
			for _, x := range tc.adds {
				ov = append(ov, a.Add(x[0], r, x[1], x[2])...)
			}
			if tc.size > 0 {
				a.SetSize(tc.size)
			}
			got, err := io.ReadAll(io.NewSectionReader(a, 0, a.Size()))
			if err != nil || string(got) != tc.want {
				t.Errorf("read %q, %v; want %q", got, err, tc.want)
			}
			if g := a.Gaps(a.Size()); !slices.Equal(g, tc.gaps) {
				t.Errorf("Gaps = %v, want %v", g, tc.gaps)
			}
			if !slices.Equal(ov, tc.overlaps) {
				t.Errorf("overlaps = %v, want %v", ov, tc.overlaps)
			}
			// Reading at every offset and length agrees with the whole.
			for off := range len(got) {
				b := make([]byte, 3)
				n, _ := a.ReadAt(b, int64(off))
				if string(b[:n]) != string(got[off:min(off+3, len(got))]) {
					t.Errorf("ReadAt(3, %d) = %q, want %q", off, b[:n], got[off:min(off+3, len(got))])
				}
			}
		})
	}
}

func TestAssemblyAddHalf(t *testing.T) {
	t.Parallel()
	data := []byte("abcdefghij")
	h := flow.NewHalf(flow.Endpoint{}, flow.Endpoint{}, bytes.NewReader(data), 10, nil)
	h.Gaps = []flow.Range{{Start: 3, End: 5}}
	a := &Assembly{}
	a.AddHalf(0, h, 0, 10)
	if g := a.Gaps(10); !slices.Equal(g, []flow.Range{{Start: 3, End: 5}}) {
		t.Fatalf("Gaps = %v, want [3-5]", g)
	}
	// A second copy fills the gap the first left.
	a.Add(3, strings.NewReader("DE"), 0, 2)
	got, _ := io.ReadAll(io.NewSectionReader(a, 0, 10))
	if string(got) != "abcDEfghij" || len(a.Gaps(10)) != 0 {
		t.Errorf("after filling: %q gaps %v", got, a.Gaps(10))
	}
}

func TestBufferSpills(t *testing.T) {
	t.Parallel()
	b := NewBuffer(t.TempDir(), 10)
	want := strings.Repeat("0123456789", 5)
	for i := 0; i < len(want); i += 7 {
		if _, err := b.Write([]byte(want[i:min(i+7, len(want))])); err != nil {
			t.Fatal(err)
		}
	}
	if b.f == nil {
		t.Fatal("50 bytes past a 10-byte limit stayed in memory")
	}
	got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil || string(got) != want {
		t.Errorf("read %q, %v; want %q", got, err, want)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

func TestCopyLimit(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	n, cut, err := CopyLimit(&b, strings.NewReader("abcdef"), 4)
	if n != 4 || !cut || err != nil || b.String() != "abcd" {
		t.Errorf("CopyLimit(6 bytes, 4) = %d %v %v %q", n, cut, err, b.String())
	}
	b.Reset()
	n, cut, err = CopyLimit(&b, strings.NewReader("abcd"), 4)
	if n != 4 || cut || err != nil {
		t.Errorf("CopyLimit(4 bytes, 4) = %d %v %v", n, cut, err)
	}
}

func TestLinesAndReplies(t *testing.T) {
	t.Parallel()
	s := "220-Welcome\r\n free text\r\n220 ready\r\nNOT A REPLY\r\n150 Opening\n226 Done" + strings.Repeat("x", 100)
	lr := NewLineReader(strings.NewReader(s), 0, int64(len(s)), 20)
	rr := NewReplyReader(lr)
	var got []string
	for {
		r, ok := rr.Next()
		if !ok {
			break
		}
		got = append(got, strings.Join(append([]string{string(rune('0' + r.Code/100))}, r.Lines...), "|"))
	}
	want := []string{"2|Welcome|free text|ready", "1|Opening", "2|Done" + strings.Repeat("x", 12)}
	if !slices.Equal(got, want) || rr.Junk != 1 {
		t.Errorf("replies %q junk %d, want %q junk 1", got, rr.Junk, want)
	}
	lr = NewLineReader(strings.NewReader("ab\r\ncd"), 0, 6, 0)
	l1, _ := lr.Next()
	l2, _ := lr.Next()
	if _, err := lr.Next(); !errors.Is(err, io.EOF) || string(l1.Text) != "ab" || l1.End != 4 || string(l2.Text) != "cd" || !l2.Unterminated {
		t.Errorf("lines %+v %+v, %v", l1, l2, err)
	}
}
