package main

import (
	"fmt"
	"os"
	"syscall"
)

// alignedBuffer returns n bytes of anonymous memory, page-aligned, as O_DIRECT writes need.
func alignedBuffer(n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	return b, nil
}

// openDirect opens name for writing with O_DIRECT, or without it (direct reports false) on
// a file system that refuses it.
func openDirect(name string) (f *os.File, direct bool, err error) {
	f, err = os.OpenFile(name, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err == nil {
		return f, true, nil
	}
	f, err = os.OpenFile(name, os.O_WRONLY, 0)
	return f, false, err
}

// datasync is fdatasync(2), as the local plugin syncs a part.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// dropCaches writes back dirty pages and drops the clean page cache (needs root), so that
// every measurement starts from the same, empty, cache.
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("1\n"), 0)
}
