package logstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyDir copies the store's files: what a crash at that moment leaves.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == lockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func partFile(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+partExt))
	if len(m) != 1 {
		t.Fatalf("partition files: %v", m)
	}
	return m[0]
}

// appendN appends access records from..from+n-1 in one call and flushes:
// with BlockRecords n, one block.
func appendN(s *Store, from, n int) {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = access(from+i, "a")
	}
	s.Append(recs...)
	s.Flush()
}

// TestCrashTornBlock cuts a partition file in the middle of its last
// block: Open warns, cuts it off and keeps the blocks before it.
func TestCrashTornBlock(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0.Add(time.Hour)}
	dir := t.TempDir()
	s, _ := open(t, dir, Options{Now: clk.Now, BlockRecords: 100})
	appendN(s, 0, 100)
	appendN(s, 100, 100)
	appendN(s, 200, 50)
	s.Close() // blocks of 100, 100 and 50
	path := partFile(t, dir)
	fi, _ := os.Stat(path)
	for _, cut := range []int64{fi.Size() - 1, fi.Size() - 40, fi.Size() - 200} {
		crashed := t.TempDir()
		copyDir(t, dir, crashed)
		cpath := filepath.Join(crashed, filepath.Base(path))
		if err := os.Truncate(cpath, cut); err != nil {
			t.Fatal(err)
		}
		s, log := open(t, crashed, Options{Now: clk.Now})
		got := all(t, s, Query{})
		s.Close()
		if len(got) != 200 || got[199].Access.Path != "/items/199?page=1" {
			t.Errorf("cut at %d: %d records, want the 200 of the whole blocks", cut, len(got))
		}
		if !strings.Contains(log.String(), "cutting off a torn or corrupt end") {
			t.Errorf("cut at %d: no warning in %q", cut, log.String())
		}
	}
	// Garbage appended to the file (a crash after the length made it to
	// disk but not the data) is cut off too.
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	f, _ := os.OpenFile(filepath.Join(crashed, filepath.Base(path)), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(bytes.Repeat([]byte{0}, 4096))
	f.Close()
	s, _ = open(t, crashed, Options{Now: clk.Now})
	if n := len(all(t, s, Query{})); n != 250 {
		t.Errorf("with zeros appended: %d records, want 250", n)
	}
	s.Append(access(300, "a"))
	s.Close()
	s = mustOpen(t, crashed, Options{Now: clk.Now})
	if n := len(all(t, s, Query{})); n != 251 {
		t.Errorf("after writing past the cut: %d records, want 251", n)
	}
}

// TestCrashWAL: flushed records survive a crash through the write-ahead
// log; a torn last WAL block loses only itself.
func TestCrashWAL(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0.Add(time.Hour)}
	dir := t.TempDir()
	s, _ := open(t, dir, Options{Now: clk.Now})
	defer s.Close()
	for i := range 30 {
		s.Append(access(i, "a"))
		if i%10 == 9 {
			s.Flush() // three WAL blocks of 10
		}
	}
	s.Append(access(99, "a")) // not flushed: lost in a crash
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	c := mustOpen(t, crashed, Options{Now: clk.Now})
	if n := len(all(t, c, Query{})); n != 30 {
		t.Errorf("after a crash: %d records, want the 30 flushed", n)
	}
	c.Close()

	torn := t.TempDir()
	copyDir(t, dir, torn)
	wal := filepath.Join(torn, walName)
	fi, _ := os.Stat(wal)
	os.Truncate(wal, fi.Size()-5)
	c, log := open(t, torn, Options{Now: clk.Now})
	if n := len(all(t, c, Query{})); n != 20 {
		t.Errorf("with a torn last WAL block: %d records, want 20", n)
	}
	c.Close()
	if !strings.Contains(log.String(), "torn") {
		t.Errorf("no warning: %q", log.String())
	}
}

// TestCrashAfterSeal: a crash after the head was sealed but before the
// write-ahead log was emptied does not duplicate records.
func TestCrashAfterSeal(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0.Add(time.Hour)}
	dir := t.TempDir()
	s, _ := open(t, dir, Options{Now: clk.Now})
	for i := range 40 {
		s.Append(access(i, "a"))
	}
	s.Flush()
	wal, err := os.ReadFile(filepath.Join(dir, walName))
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // seals, removes the WAL
	os.WriteFile(filepath.Join(dir, walName), wal, 0o600)
	s = mustOpen(t, dir, Options{Now: clk.Now})
	if n := len(all(t, s, Query{})); n != 40 {
		t.Errorf("%d records, want 40", n)
	}
	s.Append(access(41, "a"))
	s.Close()
	s = mustOpen(t, dir, Options{Now: clk.Now})
	if n := len(all(t, s, Query{})); n != 41 {
		t.Errorf("after another seal: %d records, want 41", n)
	}
}

// TestCorruptBlock: a block whose body was damaged is skipped, with a
// warning, at query time; a file with a bad name or of garbage does not
// fail Open.
func TestCorruptBlock(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0.Add(time.Hour)}
	dir := t.TempDir()
	s, _ := open(t, dir, Options{Now: clk.Now, BlockRecords: 100})
	appendN(s, 0, 100)
	appendN(s, 100, 100)
	appendN(s, 200, 100)
	s.Close()
	path := partFile(t, dir)
	b, _ := os.ReadFile(path)
	// Flip a byte in the middle of the first block's body.
	il := binary.LittleEndian.Uint32(b[4:])
	b[frameHeader+int(il)+50] ^= 0xff
	os.WriteFile(path, b, 0o600)
	os.WriteFile(filepath.Join(dir, "junk.lgs"), []byte("junk"), 0o600)
	os.WriteFile(filepath.Join(dir, "20261206T090000Z-3600s.lgs"), bytes.Repeat([]byte("x"), 100), 0o600)
	s, log := open(t, dir, Options{Now: clk.Now})
	defer s.Close()
	got := all(t, s, Query{})
	if len(got) != 200 || got[0].Access.Path != "/items/100?page=1" {
		t.Errorf("%d records from %v, want the 200 of the good blocks", len(got), got[0])
	}
	if st := s.Stats(); st.Corrupt < 2 {
		t.Errorf("Stats().Corrupt = %d", st.Corrupt)
	}
	for _, w := range []string{"skipping a corrupt block", "unknown name"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("no %q warning in %q", w, log.String())
		}
	}
	if err := s.Query(context.Background(), Query{TraceID: "0123"}, func(Record) error { return nil }); err != nil {
		t.Error(err)
	}
}
