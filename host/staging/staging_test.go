package staging

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func newDir(t *testing.T) *Dir {
	t.Helper()
	d, err := New(filepath.Join(t.TempDir(), "staging"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// files lists every file under the staging root, temporaries included.
func files(t *testing.T, d *Dir) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(d.Root(), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(d.Root(), p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestWriteCommit(t *testing.T) {
	d := newDir(t)
	data := bytes.Repeat([]byte("abcdefgh"), 1<<16)
	s, err := d.Write("u1", 3, iotest.HalfReader(bytes.NewReader(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if s.SHA256 != hexSum(data) {
		t.Fatalf("sha256 = %s", s.SHA256)
	}
	if _, err := os.Stat(d.PartPath("u1", 3)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("part visible before Commit")
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(d.PartPath("u1", 3))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed part differs (err %v)", err)
	}
	if fs := files(t, d); len(fs) != 1 {
		t.Fatalf("files after commit: %v", fs)
	}
}

func TestWriteRefusesWrongSizes(t *testing.T) {
	tests := map[string]struct {
		r    io.Reader
		size int64
		want error
	}{
		"short":        {strings.NewReader("abc"), 4, ErrTooShort},
		"long":         {strings.NewReader("abcde"), 4, ErrTooLong},
		"empty":        {strings.NewReader(""), 4, ErrTooShort},
		"broken body":  {io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(io.ErrUnexpectedEOF)), 4, ErrTooShort},
		"failing body": {io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(errors.New("reset"))), 4, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := newDir(t)
			_, err := d.Write("u1", 0, tc.r, tc.size)
			if err == nil {
				t.Fatal("Write accepted a wrong body")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if fs := files(t, d); len(fs) != 0 {
				t.Fatalf("left behind: %v", fs)
			}
		})
	}
}

// Concurrent writes of one part, each committed, leave one whole version, never a mix.
func TestConcurrentWritesOfOnePart(t *testing.T) {
	d := newDir(t)
	const size = 1 << 20
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, size)
	}
	var wg sync.WaitGroup
	for _, v := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := d.Write("u1", 0, iotest.HalfReader(bytes.NewReader(v[:size/2])), size/2)
			if err == nil {
				err = s.Commit()
			}
			if err != nil {
				t.Error(err)
			}
			s, err = d.Write("u1", 0, bytes.NewReader(v), size)
			if err == nil {
				err = s.Commit()
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := os.ReadFile(d.PartPath("u1", 0))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range versions {
		found = found || bytes.Equal(got, v)
	}
	if !found {
		t.Fatalf("part is not one of the versions written (len %d)", len(got))
	}
	if fs := files(t, d); len(fs) != 1 {
		t.Fatalf("files left: %v", fs)
	}
}

func TestReaderAndRemove(t *testing.T) {
	d := newDir(t)
	parts := [][]byte{[]byte("hello "), []byte("world "), []byte("!")}
	sizes := make([]int64, len(parts))
	for n, p := range parts {
		s, err := d.Write("u1", n, bytes.NewReader(p), int64(len(p)))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
		sizes[n] = int64(len(p))
	}
	r := d.Reader("u1", sizes)
	got, err := io.ReadAll(iotest.OneByteReader(r))
	r.Close()
	if err != nil || string(got) != "hello world !" {
		t.Fatalf("Reader = %q, %v", got, err)
	}
	// A part whose size on disk is wrong is refused, not delivered.
	sizes[1]++
	if _, err := io.ReadAll(d.Reader("u1", sizes)); err == nil {
		t.Fatal("Reader accepted a part of the wrong size")
	}
	ids, err := d.Uploads()
	if err != nil || len(ids) != 1 || ids[0] != "u1" {
		t.Fatalf("Uploads = %v, %v", ids, err)
	}
	if err := d.Remove("u1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("u1"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if fs := files(t, d); len(fs) != 0 {
		t.Fatalf("left after Remove: %v", fs)
	}
}

func TestRemoveTemporaries(t *testing.T) {
	d := newDir(t)
	s, err := d.Write("u1", 0, strings.NewReader("abcd"), 4)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a crash between Write and Commit: the temporary stays.
	if err := d.RemoveTemporaries("u1"); err != nil {
		t.Fatal(err)
	}
	if fs := files(t, d); len(fs) != 0 {
		t.Fatalf("temporaries left: %v", fs)
	}
	if err := s.Commit(); err == nil {
		t.Fatal("Commit of a removed temporary succeeded")
	}
}
