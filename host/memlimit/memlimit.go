// Package memlimit keeps the host's Go heap near what its work needs, so that its resident
// memory stays within DESIGN's 64 MiB while 8 parts upload and a delivery runs.
//
// The host's live heap is mostly buffers in pools (each part write's blocks, each
// delivery's send buffers), about 30 MiB at that load, and it allocates little garbage.
// With the garbage collector's default (GOGC=100) the heap grows to twice the live heap
// before a collection, slowly, so resident memory creeps towards 80 MiB on a long upload
// and depends on how long it ran. A soft limit (runtime/debug.SetMemoryLimit) makes the
// collector run before that. A fixed limit would make it run without pause once more parts
// are in flight than the limit allows for, so the limit follows the part writes in flight:
// Base for up to BaseParts of them, PerPart more for each further one.
package memlimit

import (
	"os"
	"runtime/debug"
	"sync"
)

const (
	// Base is the limit of the Go-managed memory with up to BaseParts part writes in
	// flight: with the binary's own pages (about 18 MiB) it keeps the process within 64 MiB.
	Base = 44 << 20
	// BaseParts is how many part writes Base allows for.
	BaseParts = 8
	// PerPart is what each further part write in flight may add: its staging pipeline
	// (2 MiB, see package staging) and its request's buffers.
	PerPart = 5 << 19 // 2.5 MiB
)

// Limiter sets the memory limit from the part writes in flight. The zero value is not
// usable; use New.
type Limiter struct {
	mu      sync.Mutex
	enabled bool
	current int64
}

// New returns a Limiter and sets the limit for no part write in flight. It does nothing,
// then or later, when the operator set GOMEMLIMIT (the runtime applies that one).
func New() *Limiter {
	l := &Limiter{enabled: os.Getenv("GOMEMLIMIT") == ""}
	l.PartWrites(0)
	return l
}

// Limit is the limit for n part writes in flight.
func Limit(n int) int64 {
	return Base + int64(max(0, n-BaseParts))*PerPart
}

// PartWrites sets the limit for n part writes in flight.
func (l *Limiter) PartWrites(n int) {
	if !l.enabled {
		return
	}
	limit := Limit(n)
	l.mu.Lock()
	defer l.mu.Unlock()
	if limit != l.current {
		debug.SetMemoryLimit(limit)
		l.current = limit
	}
}
