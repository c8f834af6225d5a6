package logfile_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"noops/internal/runtime/logfile"
)

// read returns the records of one log file.
func read(t *testing.T, path string) []logfile.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logfile.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r logfile.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q of %s is not a JSON record: %v", sc.Text(), path, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func lines(rs []logfile.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Stream+":"+r.Line)
	}
	return out
}

func TestCopy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    []string
	}{
		{name: "whole lines", in: "a\nbb\n", want: []string{"out:a", "out:bb"}},
		{name: "partial last line is flushed", in: "a\nno newline", want: []string{"out:a", "out:no newline"}},
		{name: "empty lines kept", in: "\n\nx\n", want: []string{"out:", "out:", "out:x"}},
		{name: "long line split", in: "abcdefghij\nk\n", maxLine: 4, want: []string{"out:abcd", "out:efgh", "out:ij", "out:k"}},
		{name: "line of exactly max", in: strings.Repeat("x", 16) + "\n", maxLine: 16, want: []string{"out:" + strings.Repeat("x", 16)}},
		{name: "line of max plus one", in: strings.Repeat("x", 17) + "\n", maxLine: 16, want: []string{"out:" + strings.Repeat("x", 16), "out:x"}},
		{name: "nothing", in: "", want: nil},
		{name: "json special characters", in: "{\"x\": \"\\t\"}\n", want: []string{`out:{"x": "\t"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.log")
			l, err := logfile.Open(path, logfile.Options{MaxLine: tc.maxLine})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Copy("out", strings.NewReader(tc.in)); err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got := lines(read(t, path))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Copy(%q) recorded %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestMaxLineBoundary: no record exceeds MaxLine and nothing is lost.
func TestMaxLineBoundary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	l, err := logfile.Open(path, logfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", logfile.DefaultMaxLine*2+10)
	if err := l.Copy("stdout", strings.NewReader(long+"\n")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	var joined strings.Builder
	for _, r := range read(t, path) {
		if len(r.Line) > logfile.DefaultMaxLine {
			t.Errorf("record of %d bytes, want at most %d", len(r.Line), logfile.DefaultMaxLine)
		}
		joined.WriteString(r.Line)
	}
	if joined.String() != long {
		t.Errorf("pieces join to %d bytes, want %d", joined.Len(), len(long))
	}
}

func TestRecordFormat(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	path := filepath.Join(t.TempDir(), "s.log")
	l, err := logfile.Open(path, logfile.Options{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write("stderr", "boom"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2025-03-01T12:00:00.123456789Z","stream":"stderr","line":"boom"}` + "\n"
	if string(b) != want {
		t.Errorf("file holds %q, want %q", b, want)
	}
	if err := l.Write("stderr", "late"); err == nil {
		t.Error("Write after Close succeeded, want an error")
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.log")
	// Every record is about 80 bytes; 300 bytes hold 3 of them.
	l, err := logfile.Open(path, logfile.Options{MaxSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := l.Write("stdout", fmt.Sprintf("line %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	names, _ := filepath.Glob(path + "*")
	if len(names) != 4 {
		t.Fatalf("files %v, want s.log and s.log.1 to .3", names)
	}
	// Newest last: .3, .2, .1, then the live file, with no gap or repeat.
	var got []string
	for _, p := range []string{path + ".3", path + ".2", path + ".1", path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 300 {
			t.Errorf("%s is %d bytes, want at most 300", p, fi.Size())
		}
		for _, r := range read(t, p) {
			got = append(got, r.Line)
		}
	}
	if got[len(got)-1] != fmt.Sprintf("line %02d", n-1) {
		t.Errorf("newest line %q, want line %02d", got[len(got)-1], n-1)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("lines out of order across rotated files: %q", got)
			break
		}
	}
	// A reopened log keeps appending to the live file.
	l, err = logfile.Open(path, logfile.Options{MaxSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	before := len(read(t, path))
	if err := l.Write("stdout", "again"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if after := len(read(t, path)); after != before+1 && after != 1 {
		t.Errorf("reopened log has %d records, want %d (or 1 after a rotation)", after, before+1)
	}
}
