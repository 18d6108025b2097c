package staging

import (
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileWriter writes a part file on Linux with direct I/O: the disk reads the blocks straight
// from the pipeline's buffers, nothing is copied into the page cache (staged parts never
// fill it) and the final fdatasync has no data left to write, only the file's size and block
// map. The writer goroutine writes whatever blocks have arrived in one pwritev, so writes
// grow when the disk falls behind (see copyExact). The part's last partial page, or a file
// system that refuses O_DIRECT, goes through the page cache instead.
//
// Measured against buffered writes flushed behind the cursor (sync_file_range every 8 MiB,
// then POSIX_FADV_DONTNEED), on this project's 2-core VMs with other work running: those
// cost about 15 ms more CPU per 50 MiB part (the copy into the page cache and its
// bookkeeping), which made a part PUT about 20 % slower whenever the CPU was the limit (the
// usual case there); they did better only while another program kept the same disk busy
// with large buffered writes.
type fileWriter struct {
	f      *os.File
	fd     int
	direct bool
}

// directAlign is the alignment O_DIRECT needs of offsets, lengths and buffer addresses on
// the file systems staging runs on (4 KiB logical blocks or smaller). The pool's blocks are
// page-aligned allocations of a multiple of it.
const directAlign = 4096

func newFileWriter(f *os.File) *fileWriter {
	w := &fileWriter{f: f, fd: int(f.Fd())}
	if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err == nil {
		_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, flags|unix.O_DIRECT)
		w.direct = err == nil
	}
	return w
}

// write writes bufs, one after the other, at offset off.
func (w *fileWriter) write(bufs [][]byte, off int64) error {
	if w.direct {
		direct, rest := splitAligned(bufs)
		if len(direct) > 0 {
			n, err := pwritev(w.fd, direct, off)
			switch {
			case errors.Is(err, syscall.EINVAL) && n == 0:
				// The file system wants another alignment: write through the page cache.
				rest = bufs
			case err != nil:
				return err
			default:
				off += n
			}
		}
		if len(rest) == 0 {
			return nil
		}
		if err := w.leaveDirect(); err != nil {
			return err
		}
		bufs = rest
	}
	_, err := pwritev(w.fd, bufs, off)
	return err
}

// splitAligned splits bufs into a head that O_DIRECT takes (whole aligned pages at aligned
// addresses) and the rest.
func splitAligned(bufs [][]byte) (direct, rest [][]byte) {
	for i, b := range bufs {
		if aligned(b) {
			continue
		}
		whole := len(b) &^ (directAlign - 1)
		if whole == 0 || uintptr(unsafe.Pointer(&b[0]))%directAlign != 0 {
			return bufs[:i], bufs[i:]
		}
		direct = append(bufs[:i:i], b[:whole])
		rest = append([][]byte{b[whole:]}, bufs[i+1:]...)
		return direct, rest
	}
	return bufs, nil
}

func aligned(b []byte) bool {
	return len(b)%directAlign == 0 && uintptr(unsafe.Pointer(&b[0]))%directAlign == 0
}

func (w *fileWriter) leaveDirect() error {
	w.direct = false
	flags, err := unix.FcntlInt(w.f.Fd(), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(w.f.Fd(), unix.F_SETFL, flags&^unix.O_DIRECT)
	}
	return err
}

// pwritev writes all of bufs at off and returns the bytes written.
func pwritev(fd int, bufs [][]byte, off int64) (int64, error) {
	bufs = append([][]byte(nil), bufs...) // advanced below; the caller's slice stays as it was
	var total int64
	for len(bufs) > 0 {
		n, err := unix.Pwritev(fd, bufs, off)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
		total += int64(n)
		off += int64(n)
		for n > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				break
			}
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
	}
	return total, nil
}

// finish makes the file's data durable: fdatasync writes what went through the page cache
// and commits the size and block map, then flushes the device's cache. It then drops the
// pages of the size bytes written from off, if any, from the page cache.
func (w *fileWriter) finish(off, size int64) error {
	if err := unix.Fdatasync(w.fd); err != nil {
		return err
	}
	_ = unix.Fadvise(w.fd, off, size, unix.FADV_DONTNEED)
	return nil
}

// DropCache drops the pages of size bytes of f from off from the page cache, if it has
// them: for reads of data that is not read again.
func DropCache(f *os.File, off, size int64) {
	_ = unix.Fadvise(int(f.Fd()), off, size, unix.FADV_DONTNEED)
}

// SectionReader returns a reader of the size bytes of f from off that reads with direct
// I/O where it can, for data read once (the whole-file digest reads each part back once):
// the disk fills the caller's buffer itself, with no copy from the page cache and no pages
// left behind in it. A read into a buffer that is not page-aligned, or one a file system
// refuses (EINVAL: tmpfs, some network file systems), goes through the page cache instead,
// and so do all reads after it. It sets O_DIRECT on f: f must be opened for this reader
// alone. Like io.SectionReader, it returns io.EOF where f ends, even before size bytes.
func SectionReader(f *os.File, off, size int64) io.Reader {
	r := &sectionReader{f: f, off: off, end: off + size}
	if off%directAlign == 0 {
		if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err == nil {
			_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, flags|unix.O_DIRECT)
			r.direct = err == nil
		}
	}
	return r
}

type sectionReader struct {
	f        *os.File
	off, end int64
	direct   bool
}

func (r *sectionReader) Read(b []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	want := int(min(int64(len(b)), r.end-r.off))
	if r.direct {
		// Whole pages at an aligned offset into an aligned buffer; the section's last
		// partial page is read whole where b has room for it, and cut.
		n := (want + directAlign - 1) &^ (directAlign - 1)
		if n > len(b) {
			n = want &^ (directAlign - 1)
		}
		if n > 0 && uintptr(unsafe.Pointer(&b[0]))%directAlign == 0 {
			got, err := pread(int(r.f.Fd()), b[:n], r.off)
			if !errors.Is(err, syscall.EINVAL) || got > 0 {
				got = min(got, want)
				r.off += int64(got)
				if err == nil && got == 0 {
					err = io.EOF
				}
				if got%directAlign != 0 {
					r.leaveDirect() // a partial page: the next offset is not aligned
				}
				return got, err
			}
		}
		r.leaveDirect()
	}
	got, err := r.f.ReadAt(b[:want], r.off)
	r.off += int64(got)
	if err == io.EOF && got > 0 {
		err = nil
	}
	return got, err
}

func (r *sectionReader) leaveDirect() {
	r.direct = false
	if flags, err := unix.FcntlInt(r.f.Fd(), unix.F_GETFL, 0); err == nil {
		_, _ = unix.FcntlInt(r.f.Fd(), unix.F_SETFL, flags&^unix.O_DIRECT)
	}
}

// pread reads into b at off, once, retrying only when interrupted.
func pread(fd int, b []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(fd, b, off)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}
