package pluginmgr

import "golang.org/x/sys/unix"

// childExited reports whether the child process pid has exited, reaped or not, without
// reaping it (go-plugin does that). It sees a death at once, where go-plugin's Exited
// waits for the process's output to be drained and the process reaped.
func childExited(pid int) bool {
	if pid <= 0 {
		return false
	}
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if err == unix.ECHILD {
		return true // reaped already
	}
	return err == nil && info.Signo != 0
}
