// Package procs sets how many goroutines the host runs at once (GOMAXPROCS).
//
// A part write's writer goroutine spends much of its time in pwritev with direct I/O (see
// package staging), and the whole-file digest in preads: syscalls that block while the disk
// works, about 0.1 ms per 128 KiB block. The runtime hands the P of a goroutine blocked in
// a syscall to another thread only when sysmon retakes it, 20 µs or more later (and sysmon,
// kept awake by those retakes, costs CPU itself). With one P per core, the part's reader
// and hasher, runnable meanwhile, wait for that P hundreds of times per part. With more Ps
// than cores, an idle P is there for them at once; the kernel still runs no more threads at
// a time than it has cores.
//
// Measured on a 2-core VM (make bench's trials, alternating a host at the default with the
// same host at twice as many Ps, 25 rounds each; median of the per-round ratios): one 50 MiB
// part PUT 1.09 and 1.15 x, 4 parts in sequence 1.09 and 1.07 x, 4 parts in parallel 1.16
// and 1.19 x (4 and 8 Ps); 3 Ps gave 1.02, 1.09 and 1.10 x.
package procs

import (
	"os"
	"runtime"
)

// PerCore is how many Ps the host runs per core (per CPU the runtime's default allows: its
// default follows a container's CPU limit) unless the operator set GOMAXPROCS.
const PerCore = 2

// Set sets GOMAXPROCS to PerCore times the runtime's default, unless the environment sets
// GOMAXPROCS (which the runtime applied), and returns the value in effect. Call it once,
// at start: a second call doubles again. Setting it stops the runtime's own updates of the
// default when a container's CPU limit changes.
func Set() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := PerCore * runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(n)
	return n
}
