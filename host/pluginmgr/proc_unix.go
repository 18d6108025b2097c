//go:build unix

package pluginmgr

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ownedByMe tells whether fi is owned by this process's (effective) user, who owns the
// directories it makes.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// processGone tells whether no live process has this pid (on this machine): none at all,
// or (where /proc tells) a zombie not yet reaped, such as a host just killed.
func processGone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, the state follows the
	// last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
