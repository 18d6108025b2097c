//go:build unix

package localstore

import "syscall"

// noFollow makes an open fail (ELOOP) where the last element of the path is a symbolic
// link.
const noFollow = syscall.O_NOFOLLOW
