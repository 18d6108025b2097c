package staging

import (
	"bytes"
	"io"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A staged part does not stay in the page cache: each window is dropped once on disk, and
// the whole file after the final fdatasync.
func TestStagedPartLeavesPageCache(t *testing.T) {
	d := newDir(t)
	var st unix.Statfs_t
	if err := unix.Statfs(d.Root(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skip("the test directory is on tmpfs, whose pages are the file itself")
	}
	data := randomBytes(32<<20 + 5000)
	s, err := d.Write("u1", 0, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := residentBytes(t, d.PartPath("u1", 0)); n > 64<<10 {
		t.Errorf("%d KiB of the %d KiB part are in the page cache after Commit, want none", n>>10, len(data)>>10)
	}
}

// residentBytes returns how many bytes of the file at path are in the page cache.
func residentBytes(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)),
		uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		if v&1 != 0 {
			n += page
		}
	}
	return n
}

// A buffer that O_DIRECT cannot take (misaligned, or a partial page) and what follows it
// go through the page cache; what comes before it goes direct.
func TestSplitAligned(t *testing.T) {
	page := make([]byte, 4*directAlign+directAlign) // room to misalign
	base := int(uintptr(unsafe.Pointer(&page[0])) % directAlign)
	if base != 0 {
		base = directAlign - base
	}
	a := page[base : base+directAlign]                   // aligned page
	b := page[base+directAlign : base+3*directAlign+100] // aligned, 2 pages and 100 bytes
	c := page[base+directAlign+1 : base+2*directAlign+1] // misaligned
	cases := map[string]struct {
		in           [][]byte
		direct, rest int // bytes
	}{
		"all aligned":       {[][]byte{a, a}, 2 * directAlign, 0},
		"partial last page": {[][]byte{a, b}, 3 * directAlign, 100},
		"misaligned":        {[][]byte{a, c, a}, directAlign, 2 * directAlign},
		"short":             {[][]byte{a[:100]}, 0, 100},
	}
	for name, tc := range cases {
		direct, rest := splitAligned(tc.in)
		if n := total(direct); n != tc.direct {
			t.Errorf("%s: %d bytes direct, want %d", name, n, tc.direct)
		}
		if n := total(rest); n != tc.rest {
			t.Errorf("%s: %d bytes through the page cache, want %d", name, n, tc.rest)
		}
		for _, d := range direct {
			if !aligned(d) {
				t.Errorf("%s: a direct buffer is not aligned", name)
			}
		}
	}
}

func total(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// SectionReader gives the section's bytes whatever the buffer, offset and section; into
// aligned buffers at aligned offsets it reads with direct I/O, leaving nothing in the page
// cache (on a file system that takes O_DIRECT).
func TestSectionReader(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/f"
	data := randomBytes(3<<20 + 5000)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	DropCache(f, 0, int64(len(data)))
	f.Close()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	onTmpfs := st.Type == unix.TMPFS_MAGIC

	aligned := make([]byte, 256<<10)
	cases := []struct {
		name      string
		off, size int64
		buf       []byte
		direct    bool // read with direct I/O only: nothing in the page cache afterwards
	}{
		{"whole file, aligned buffer", 0, int64(len(data)), aligned, true},
		{"a section ending mid-page inside the file", 1 << 20, 300001, aligned, false},
		{"past the end of the file", 2 << 20, 4 << 20, aligned, false},
		{"misaligned buffer", 0, 1 << 20, aligned[1:], false},
		{"misaligned offset", 777, 1 << 20, aligned, false},
		{"buffer smaller than a page", 4096, 9000, make([]byte, 1000), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			DropCache(f, 0, int64(len(data)))
			var got bytes.Buffer
			if _, err := io.CopyBuffer(struct{ io.Writer }{&got}, SectionReader(f, c.off, c.size), c.buf); err != nil {
				t.Fatal(err)
			}
			want := data[c.off:min(c.off+c.size, int64(len(data)))]
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("read %d bytes, want %d: bytes differ", got.Len(), len(want))
			}
			if c.direct && !onTmpfs {
				if n := residentBytes(t, path); n > 0 {
					t.Errorf("%d KiB of the file are in the page cache after the read, want none (direct I/O)", n>>10)
				}
			}
		})
	}
}
