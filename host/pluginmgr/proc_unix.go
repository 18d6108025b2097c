//go:build unix

package pluginmgr

import (
	"errors"
	"os"
	"syscall"
)

// ownedByMe tells whether fi is owned by this process's (effective) user, who owns the
// directories it makes.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// processGone tells whether no process has this pid (on this machine).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
