//go:build !linux

package main

import "errors"

// residentBytes is implemented on Linux only.
func residentBytes(paths []string) (int64, error) {
	return 0, errors.New("page cache residency is measured on Linux only")
}

// dropPages does nothing outside Linux.
func dropPages(path string) error { return nil }
