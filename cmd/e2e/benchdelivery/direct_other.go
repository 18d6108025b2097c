//go:build !linux

package main

import (
	"errors"
	"os"
)

func alignedBuffer(n int) ([]byte, error) { return make([]byte, n), nil }

func openDirect(name string) (*os.File, bool, error) {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	return f, false, err
}

func datasync(f *os.File) error { return f.Sync() }

func dropCaches() error { return errors.New("dropping the page cache is only done on Linux") }
