package staging

import (
	"os"

	"golang.org/x/sys/unix"
)

// fileWriter writes a part file through the page cache and keeps the disk busy behind the
// cursor: every flushWindow bytes it starts writeback of the window just written
// (sync_file_range), waits for the window flushLag windows back to reach the disk, and drops
// it from the page cache (POSIX_FADV_DONTNEED). So the disk works while the body is still
// arriving, the final fdatasync has at most a few windows left to write, and a part write
// keeps at most (flushLag+1) x flushWindow of the page cache, none once it is done.
//
// Why not direct I/O (what this package used before): on ext4 every extending O_DIRECT
// write allocates blocks and updates the size in the journal and waits for its device
// write, so with other programs writing to the same disk each 1 MiB write queued behind
// them, and a 50 MiB part took 1.5 to 3 times as long as dd conv=fdatasync of the same
// bytes, whose writeback goes out in large extents. Deeper direct queues would also cost
// host memory per part; the page cache holds the bytes in flight instead.
type fileWriter struct {
	f       *os.File
	fd      int
	written int64 // bytes written so far (blocks arrive in order)
	started int64 // writeback started for [0, started)
	dropped int64 // on disk and dropped from the cache: [0, dropped)
}

const (
	flushWindow = 8 << 20
	flushLag    = 2
)

func newFileWriter(f *os.File) *fileWriter { return &fileWriter{f: f, fd: int(f.Fd())} }

// write writes b at offset off, the end of what was written before.
func (w *fileWriter) write(b []byte, off int64) error {
	if _, err := w.f.WriteAt(b, off); err != nil {
		return err
	}
	w.written = off + int64(len(b))
	if w.written-w.started < flushWindow {
		return nil
	}
	// Errors of sync_file_range and fadvise are left to the final fdatasync, which reports
	// any write error of the file; both calls only schedule and wait.
	_ = unix.SyncFileRange(w.fd, w.started, w.written-w.started, unix.SYNC_FILE_RANGE_WRITE)
	w.started = w.written
	if upto := w.started - flushLag*flushWindow; upto > w.dropped {
		_ = unix.SyncFileRange(w.fd, w.dropped, upto-w.dropped,
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		_ = unix.Fadvise(w.fd, w.dropped, upto-w.dropped, unix.FADV_DONTNEED)
		w.dropped = upto
	}
	return nil
}

// finish makes the file's data durable (fdatasync: the rest of the data, the size and the
// block map, then a device cache flush) and drops the file from the page cache.
func (w *fileWriter) finish() error {
	if err := unix.Fdatasync(w.fd); err != nil {
		return err
	}
	_ = unix.Fadvise(w.fd, 0, 0, unix.FADV_DONTNEED)
	return nil
}
