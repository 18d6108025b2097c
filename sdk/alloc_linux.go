package sdk

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Allocate allocates the n bytes of f from off (fallocate, keeping the file's size), for
// a part about to be written there into a sparse part file (PartFiles), by the plugin or
// by the host. The part then overwrites allocated blocks instead of filling a hole: ext4
// and XFS let direct writes of different parts run side by side instead of one at a time
// under the inode's lock, and a full disk shows before the first byte is written. Only the
// part's range is allocated, so an object takes the space of the parts sent, not of its
// declared size. File systems without fallocate are left as they are.
func Allocate(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	return err
}
