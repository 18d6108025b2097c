//go:build !unix

package app

// openFileLimit reports no limit where there is no ulimit.
func openFileLimit() (uint64, bool) { return 0, false }
