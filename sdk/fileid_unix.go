//go:build unix

package sdk

import (
	"os"
	"syscall"
)

// FileID returns the device and inode numbers of a file described by fi (from os.Stat or
// File.Stat), and false where the system does not give them. The host and a plugin with
// PartFiles compare them to make sure they name the same file.
func FileID(fi os.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true //nolint:unconvert // int32 on some systems
}
