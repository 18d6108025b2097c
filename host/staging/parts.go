package staging

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrDamaged marks a staged part whose size on disk is not its size.
var ErrDamaged = errors.New("staged part damaged")

// HasPart reports whether part n of upload id is staged.
func (d *Dir) HasPart(id string, n int) bool {
	st, err := os.Lstat(d.PartPath(id, n))
	return err == nil && st.Mode().IsRegular()
}

// RemovePart removes the staged part n of upload id (once the backend holds it). Removing
// a part that is not there is not an error.
func (d *Dir) RemovePart(id string, n int) error {
	if err := os.Remove(d.PartPath(id, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("staging: remove part %d: %w", n, err)
	}
	return nil
}

// Verify reads part n of upload id and reports whether it has size bytes whose SHA-256 is
// sum: false means its staged copy is damaged or missing.
func (d *Dir) Verify(id string, n int, size int64, sum []byte) (bool, error) {
	f, err := d.Open(id, n, size)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if errors.Is(err, ErrDamaged) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("staging: read part %d: %w", n, err)
	}
	return bytes.Equal(h.Sum(nil), sum), nil
}

// Bytes returns the bytes held in staging (parts and temporaries of writes in flight).
func (d *Dir) Bytes() (int64, error) {
	var total int64
	err := filepath.WalkDir(d.root, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}
