package lb

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat (100 on Linux).
const clockTicks = 100

// groupCPU returns the CPU time (user and system) used so far by the live processes of
// process group pgid, from /proc (Linux only; 0 elsewhere).
func groupCPU(pgid int) time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// After "pid (comm) ": state ppid pgrp ... utime(14) stime(15), counted from 1.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// CPU is the CPU time used so far by the balancer's processes (nginx: master and workers).
func (b *Balancer) CPU() time.Duration { return groupCPU(b.cmd.Process.Pid) }

// CPU is the CPU time used so far by the node's running host process and its plugin.
func (n *Node) CPU() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return 0
	}
	return groupCPU(n.proc.Process.Pid)
}
