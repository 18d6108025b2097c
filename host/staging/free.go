//go:build unix

package staging

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Free returns the bytes available to this process on the staging file system.
func (d *Dir) Free() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(d.root, &st); err != nil {
		return 0, fmt.Errorf("staging: statfs %s: %w", d.root, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
