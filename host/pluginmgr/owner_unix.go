//go:build unix

package pluginmgr

import (
	"os"
	"syscall"
)

// ownedByMe tells whether fi is owned by this process's user.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
