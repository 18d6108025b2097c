//go:build !unix

package sdk

import "os"

// FileID returns false: this system gives no device and inode numbers, so the host never
// writes part files here.
func FileID(os.FileInfo) (dev, ino uint64, ok bool) { return 0, 0, false }

// SoleName returns true: this system gives no link count (see fileid_unix.go).
func SoleName(os.FileInfo) bool { return true }
