package staging

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing a range of f to disk without waiting,
// so the fsync at the end of a part finds most of it written already.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// syncData flushes f's data (not its metadata times) to disk.
func syncData(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
