//go:build !linux

package sdk

import "os"

// Allocate does nothing here (see alloc_linux.go).
func Allocate(f *os.File, off, n int64) error { return nil }
