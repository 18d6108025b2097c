package localstore

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func TestMapErr(t *testing.T) {
	t.Parallel()
	pathErr := func(errno syscall.Errno) error {
		return fmt.Errorf("copy after 10 bytes: %w", &fs.PathError{Op: "write", Path: "/x/.f.1.tmp", Err: errno})
	}
	tests := map[string]struct {
		err  error
		want error // nil: no sentinel
	}{
		"disk full":     {pathErr(syscall.ENOSPC), sdk.ErrInsufficientStorage},
		"quota":         {pathErr(syscall.EDQUOT), sdk.ErrInsufficientStorage},
		"access":        {pathErr(syscall.EACCES), sdk.ErrPermission},
		"not permitted": {pathErr(syscall.EPERM), sdk.ErrPermission},
		"read-only fs":  {pathErr(syscall.EROFS), sdk.ErrPermission},
		"io error":      {pathErr(syscall.EIO), nil},
		"size mismatch": {fmt.Errorf("%w: got 1 bytes", sdk.ErrSizeMismatch), sdk.ErrSizeMismatch},
	}
	all := []error{sdk.ErrInsufficientStorage, sdk.ErrPermission, sdk.ErrSizeMismatch}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := mapErr("write", "/x/.f.1.tmp", tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("mapErr lost the cause: %v", got)
			}
			for _, s := range all {
				if errors.Is(got, s) != (s == tc.want) {
					t.Errorf("mapErr = %v: errors.Is(%v) = %v", got, s, !(s == tc.want))
				}
			}
		})
	}
}
