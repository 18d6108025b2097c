package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// CPU accounting of a trial, from /proc (Linux; elsewhere every figure reads as unknown).
// It shows where a stream of parts spends the machine's cores: a stream that delivers as
// it goes is bound by the CPU of the host, its plugin and the client together once the
// cores are busy, whatever the disk could do.

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat and /proc/stat; Linux
// fixes it at 100 for user space.
const clockTicks = 100

// cpuUse is CPU time, in seconds: of the host, of its plugin, of this process (the client
// sending the parts), and of the whole machine (busy and idle, all cores).
type cpuUse struct {
	host, plugin, client float64
	busy, idle           float64
}

func (a cpuUse) sub(b cpuUse) cpuUse {
	return cpuUse{a.host - b.host, a.plugin - b.plugin, a.client - b.client, a.busy - b.busy, a.idle - b.idle}
}

// cpuNow reads the CPU time used so far by s's host, its plugin (the host's children) and
// this process, and the machine's busy and idle time. What cannot be read counts as 0.
func (s *server) cpuNow() cpuUse {
	var u cpuUse
	pid := s.PID()
	u.host = procCPU(pid)
	if children, err := harness.ChildPIDs(pid); err == nil {
		for _, c := range children {
			u.plugin += procCPU(c)
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	u.busy, u.idle = machineCPU()
	return u
}

// procCPU returns the user and system seconds of process pid (all its threads), or 0.
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it start behind its ')'.
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 { // utime and stime are fields 14 and 15, the 12th and 13th here
		return 0
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (ut + st) / clockTicks
}

// machineCPU returns the busy and idle seconds of all cores since boot, from the "cpu"
// line of /proc/stat (idle counts iowait too: a core waiting for the disk is free to run).
func machineCPU() (busy, idle float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		x, _ := strconv.ParseFloat(v, 64)
		if i == 3 || i == 4 {
			idle += x
		} else {
			busy += x
		}
	}
	return busy / clockTicks, idle / clockTicks
}

// sha256Seconds measures the seconds one core takes to hash 1 GiB with crypto/sha256 (the
// host's hash, SHA-NI where the processor has it): the best of three passes over the part.
func (b *bench) sha256Seconds() float64 {
	best := 0.0
	for range 3 {
		start := time.Now()
		h := sha256.New()
		for range (1 << 30) / partSize {
			h.Write(b.part)
		}
		h.Sum(nil)
		if d := time.Since(start).Seconds() * (1 << 30) / float64((1<<30)/partSize*partSize); best == 0 || d < best {
			best = d
		}
	}
	return best
}

// addCPU reports the median CPU use of the trials in uses, each of size bytes, and the
// throughput the machine's cores would allow at that CPU per byte (against the dd baseline
// of base seconds for the same bytes).
func (b *bench) addCPU(name string, size int64, uses []cpuUse, base float64, shaSecs float64) {
	if len(uses) == 0 || uses[0].busy+uses[0].idle == 0 {
		b.add(result{Name: name, Note: "not measured: no /proc"})
		return
	}
	gib := float64(size) / (1 << 30)
	pick := func(f func(cpuUse) float64) float64 {
		xs := make([]float64, len(uses))
		for i, u := range uses {
			xs[i] = f(u)
		}
		return median(xs)
	}
	host, plugin, client := pick(func(u cpuUse) float64 { return u.host }), pick(func(u cpuUse) float64 { return u.plugin }), pick(func(u cpuUse) float64 { return u.client })
	busy := pick(func(u cpuUse) float64 { return u.busy / (u.busy + u.idle) })
	cores := float64(runtime.NumCPU())
	perGiB := (host + plugin + client) / gib
	bound := float64(1<<30) / (perGiB / cores) / 1e6
	b.add(result{Name: name, Value: perGiB, Unit: "s/GiB",
		Note: fmt.Sprintf("CPU seconds per GiB while the stream ran (median of %d): host %.2f, plugin %.2f, client %.2f; "+
			"the machine's %d cores were %.0f %% busy; SHA-256 takes %.2f s per GiB on one core and the host owes every byte two "+
			"(the part's and the whole file's); at this CPU per byte the cores allow at most %.0f MB/s, %.2f x the dd baseline (%.0f MB/s)",
			len(uses), host/gib, plugin/gib, client/gib, int(cores), busy*100, shaSecs, bound, bound/(float64(size)/base/1e6), float64(size)/base/1e6)})
}
