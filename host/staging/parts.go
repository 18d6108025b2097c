package staging

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrDamaged marks a staged part whose copy on disk is not what was recorded (its size or
// its CRC-32C differs).
var ErrDamaged = errors.New("staged part damaged")

// UploadDir returns the directory of upload id's parts.
func (d *Dir) UploadDir(id string) string { return d.uploadDir(id) }

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

// DamagedError reports a staged part whose bytes are not those it was acknowledged with.
type DamagedError struct{ Part int }

func (e *DamagedError) Error() string {
	return fmt.Sprintf("staging: part %d does not match its acknowledged sha-256", e.Part)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// VerifiedReader is Reader that also checks each part against sums[i], its acknowledged
// SHA-256, as it reaches the part's end: a part that changed on disk fails the read with a
// *DamagedError before its last byte is returned, so it can never be delivered whole.
func (d *Dir) VerifiedReader(id string, sizes []int64, sums [][]byte) io.ReadCloser {
	return &verifiedReader{d: d, id: id, sizes: sizes, sums: sums}
}

type verifiedReader struct {
	d     *Dir
	id    string
	sizes []int64
	sums  [][]byte
	n     int
	cur   *os.File
	left  int64
	h     hash.Hash
}

func (p *verifiedReader) Read(b []byte) (int, error) {
	for p.cur == nil {
		if p.n >= len(p.sizes) {
			return 0, io.EOF
		}
		f, err := p.d.Open(p.id, p.n, p.sizes[p.n])
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrDamaged) {
				return 0, &DamagedError{Part: p.n}
			}
			return 0, err
		}
		p.cur, p.left, p.h = f, p.sizes[p.n], sha256.New()
		if p.left == 0 {
			if err := p.endPart(); err != nil {
				return 0, err
			}
		}
	}
	// Hold back the part's last byte until the whole part is verified.
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	m, err := io.ReadFull(p.cur, b)
	p.left -= int64(m)
	p.h.Write(b[:m])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, &DamagedError{Part: p.n}
		}
		return 0, err
	}
	if p.left == 0 {
		if err := p.endPart(); err != nil {
			return 0, err
		}
	}
	return m, nil
}

func (p *verifiedReader) endPart() error {
	ok := p.n >= len(p.sums) || bytes.Equal(p.h.Sum(nil), p.sums[p.n])
	p.cur.Close()
	p.cur = nil
	if !ok {
		return &DamagedError{Part: p.n}
	}
	p.n++
	return nil
}

func (p *verifiedReader) Close() error {
	if p.cur != nil {
		err := p.cur.Close()
		p.cur = nil
		return err
	}
	return nil
}

// castagnoli is the CRC-32C table (hardware-accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns a new CRC-32C hash, the one Staged.CRC32C is.
func CRC32C() hash.Hash32 { return crc32.New(castagnoli) }

// Checked returns a reader of the size bytes of r that fails with an error wrapping
// ErrDamaged, on the read that yields the last of them, when they do not have CRC-32C
// crc: a consumer that stops at the first error never takes a damaged copy as whole.
// It costs a fraction of a second hashing pass, which is why staged copies are checked
// with it rather than their SHA-256.
func Checked(r io.Reader, size int64, crc uint32) io.Reader {
	return &checked{r: r, left: size, want: crc}
}

type checked struct {
	r    io.Reader
	left int64
	crc  uint32
	want uint32
}

func (c *checked) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if int64(n) > c.left {
		return 0, fmt.Errorf("%w: the staged copy is longer than recorded", ErrDamaged)
	}
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.left -= int64(n)
	if c.left == 0 && n > 0 && c.crc != c.want {
		return n, fmt.Errorf("%w: its CRC-32C is %08x, %08x was recorded", ErrDamaged, c.crc, c.want)
	}
	if err == io.EOF && c.left > 0 {
		return n, fmt.Errorf("%w: the staged copy ended %d bytes short", ErrDamaged, c.left)
	}
	return n, err
}
