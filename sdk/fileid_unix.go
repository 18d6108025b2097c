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

// SoleName reports whether the file described by fi has exactly one name (link count 1),
// and true where the system does not say. A data file of an unfinished object has one: a
// hard link put in its place (to a file elsewhere) has two or more.
func SoleName(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || st.Nlink == 1
}
