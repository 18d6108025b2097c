package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PluginChildren lists the children of pid (over all its threads) that are plugins.
func PluginChildren(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var pids []int
	seen := map[int]bool{}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(f)
			if err != nil || seen[n] {
				continue
			}
			seen[n] = true
			if isPlugin(n) && Alive(n) {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

func isPlugin(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte(PluginPrefix))
}

// Alive reports whether pid is a process that is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// WaitGone waits until pid is no longer a live process and every thread of it has exited: a
// killed process's main thread shows as a zombie while its other threads still exit, and
// until they have, its parent (the host) cannot see it exit. It returns how long it waited.
func WaitGone(tb testing.TB, pid int, timeout time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	for Alive(pid) || exiting(pid) {
		if time.Since(start) > timeout {
			tb.Fatalf("process %d still alive %v later", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// exiting reports whether pid still has threads other than its main one.
func exiting(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err == nil && len(tasks) > 1
}

// KillPlugin SIGKILLs pid if it is still a live plugin process (never anything else).
func KillPlugin(pid int) {
	if isPlugin(pid) && Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Children returns the pids of the processes whose parent is pid.
func Children(tb testing.TB, pid int) []int {
	tb.Helper()
	pids, err := ChildPIDs(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return pids
}

// ChildPIDs returns the pids of the processes whose parent is pid, from /proc.
func ChildPIDs(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out, nil
}
