// Package staging keeps uploaded parts on local disk until they are delivered.
//
// Layout: <root>/<upload id>/<part number, 6 digits>.part. A part is written to a temporary
// file in the same directory (".<n>.<random>.tmp") while its SHA-256 is computed, fsynced,
// and renamed into place only once exactly the expected bytes arrived. A part file that
// exists is therefore always complete; temporary files belong to requests in flight or to a
// crash and are swept.
package staging

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Errors of Write.
var (
	ErrTooShort = errors.New("body shorter than the part")
	ErrTooLong  = errors.New("body longer than the part")
	ErrNoSpace  = errors.New("no space left on the staging disk")
)

// Dir is a staging directory.
type Dir struct {
	root string
}

// New opens (creating if needed) the staging directory root.
func New(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("staging: create %s: %w", root, err)
	}
	probe, err := os.CreateTemp(root, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("staging: %s is not writable: %w", root, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &Dir{root: root}, nil
}

// Root returns the staging directory.
func (d *Dir) Root() string { return d.root }

func (d *Dir) uploadDir(id string) string { return filepath.Join(d.root, id) }

// PartPath returns the path of part n of upload id.
func (d *Dir) PartPath(id string, n int) string {
	return filepath.Join(d.uploadDir(id), fmt.Sprintf("%06d.part", n))
}

// Staged is a part written to a temporary file, not yet in place (Write), or written into
// a backend's part file (WriteAt, InPlace), with the digests of its bytes.
type Staged struct {
	SHA256 string // hex
	CRC32C uint32 // Castagnoli: what reads of the staged copy are checked with (see Checked)
	// SHA256State is the state of the part's SHA-256 before its finalization
	// (encoding.BinaryMarshaler): for an upload's first part, the state of the whole-file
	// digest after it.
	SHA256State []byte
	tmp         string
	final       string
	dir         string
}

// Write streams exactly size bytes from r into a temporary file for part n of upload id,
// hashing them on the way, and fsyncs it. It returns ErrTooShort or ErrTooLong (wrapped)
// when r does not yield exactly size bytes, ErrNoSpace when the disk is full, and leaves
// no file behind on any error. The caller then Commits or Aborts the result.
func (d *Dir) Write(id string, n int, r io.Reader, size int64) (*Staged, error) {
	dir := d.uploadDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("staging: %w", diskErr(err))
	}
	// A symbolic link in place of the upload's directory would lead the part out of staging.
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("staging: %s is not a directory of staging (a symbolic link?)", dir)
	}
	f, err := os.CreateTemp(dir, fmt.Sprintf(".%06d.*.tmp", n))
	if err != nil {
		return nil, fmt.Errorf("staging: %w", diskErr(err))
	}
	s := &Staged{tmp: f.Name(), final: d.PartPath(id, n), dir: dir}
	sum, err := copyExact(f, 0, r, size, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(s.tmp)
		return nil, fmt.Errorf("staging part %d: %w", n, diskErr(err))
	}
	s.SHA256, s.SHA256State, s.CRC32C = hex.EncodeToString(sum.sha), sum.state, sum.crc
	return s, nil
}

// WriteAt streams exactly size bytes from r into f at offset off, hashing them on the way,
// and makes them durable, as Write does: f is the data file of a backend's unfinished
// object that the host writes parts into itself (sdk.PartFiles), opened for writing. It
// creates, truncates and removes nothing, and writes nothing outside [off, off+size); on an
// error that range may hold part of the bytes, and the caller must not count on any of it.
// The result's Commit and Abort do nothing: the bytes are already in place. With tee set,
// the bytes are also written to tee as they arrive, on a goroutine of their own (a hash:
// the whole-file digest, continued from the part before).
func WriteAt(f *os.File, off int64, r io.Reader, size int64, tee io.Writer) (*Staged, error) {
	if err := sdk.Allocate(f, off, size); err != nil {
		return nil, fmt.Errorf("allocating %d bytes of %s at %d: %w", size, f.Name(), off, diskErr(err))
	}
	sum, err := copyExact(f, off, r, size, tee)
	if err != nil {
		return nil, fmt.Errorf("writing into %s at %d: %w", f.Name(), off, diskErr(err))
	}
	return &Staged{SHA256: hex.EncodeToString(sum.sha), SHA256State: sum.state, CRC32C: sum.crc}, nil
}

// InPlace tells whether s was written by WriteAt.
func (s *Staged) InPlace() bool { return s.tmp == "" }

func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Commit renames the part into place, replacing an earlier version atomically, and fsyncs
// the directory so the rename survives a crash.
func (s *Staged) Commit() error {
	if s.InPlace() {
		return nil
	}
	if err := os.Rename(s.tmp, s.final); err != nil {
		os.Remove(s.tmp)
		return fmt.Errorf("staging: commit part: %w", err)
	}
	return syncDir(s.dir)
}

// Abort removes the temporary file.
func (s *Staged) Abort() {
	if s.InPlace() {
		return
	}
	os.Remove(s.tmp)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("staging: sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("staging: sync %s: %w", dir, err)
	}
	return nil
}

// Open opens part n of upload id for reading and checks it has size bytes.
func (d *Dir) Open(id string, n int, size int64) (*os.File, error) {
	f, err := os.Open(d.PartPath(id, n))
	if err != nil {
		return nil, fmt.Errorf("staging: open part %d: %w", n, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("staging: stat part %d: %w", n, err)
	}
	if st.Size() != size {
		f.Close()
		return nil, fmt.Errorf("staging: %w: part %d has %d bytes on disk, expected %d", ErrDamaged, n, st.Size(), size)
	}
	return f, nil
}

// Remove deletes everything staged for upload id. Removing nothing is not an error.
func (d *Dir) Remove(id string) error {
	if err := os.RemoveAll(d.uploadDir(id)); err != nil {
		return fmt.Errorf("staging: remove %s: %w", id, err)
	}
	return nil
}

// Uploads returns the upload ids that have a staging directory.
func (d *Dir) Uploads() ([]string, error) {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("staging: list: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// RemoveTemporaries deletes temporary files of upload id (left by a crash mid-write).
// Call it only when no write for the upload is in flight.
func (d *Dir) RemoveTemporaries(id string) error {
	matches, err := filepath.Glob(filepath.Join(d.uploadDir(id), ".*.tmp"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("staging: %w", err)
		}
	}
	return nil
}

// Reader returns a reader of the whole file of upload id: its parts in order, each opened
// only when reached. sizes[i] is the expected size of part i.
func (d *Dir) Reader(id string, sizes []int64) io.ReadCloser {
	return &partsReader{d: d, id: id, sizes: sizes}
}

type partsReader struct {
	d     *Dir
	id    string
	sizes []int64
	n     int
	cur   *os.File
	left  int64
}

func (p *partsReader) Read(b []byte) (int, error) {
	for p.cur == nil || p.left == 0 {
		if p.cur != nil {
			p.cur.Close()
			p.cur = nil
			p.n++
		}
		if p.n >= len(p.sizes) {
			return 0, io.EOF
		}
		f, err := p.d.Open(p.id, p.n, p.sizes[p.n])
		if err != nil {
			return 0, err
		}
		p.cur, p.left = f, p.sizes[p.n]
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	m, err := p.cur.Read(b)
	p.left -= int64(m)
	if errors.Is(err, io.EOF) {
		if p.left > 0 {
			return m, fmt.Errorf("staging: part %d shrank while reading", p.n)
		}
		err = nil
	}
	return m, err
}

func (p *partsReader) Close() error {
	if p.cur != nil {
		err := p.cur.Close()
		p.cur = nil
		return err
	}
	return nil
}
