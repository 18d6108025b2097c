//go:build unix

package app

import "syscall"

// openFileLimit returns the soft limit on open files (ulimit -n).
func openFileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return r.Cur, true
}
