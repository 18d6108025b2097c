package plugintest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Stopped reports whether every thread of process pid is stopped by a signal (state T in
// /proc/<pid>/task/<tid>/stat), for tests that freeze a plugin with SIGSTOP: the signal
// takes effect asynchronously and a group stop reaches the threads one by one, so until
// Stopped the process may still answer. It is false for a process that is gone, and on
// systems without /proc.
func Stopped(pid int) bool {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false
	}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// The state follows the command name, which is in parentheses and may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}
