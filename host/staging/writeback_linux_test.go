package staging

import (
	"bytes"
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
	data := randomBytes((flushLag+2)*flushWindow + 5000)
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
