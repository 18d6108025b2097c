package sdk

import (
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Staged reads (WithStagedReads): the host offers, at Configure, a probe file in its
// staging directory; a plugin that may read staged parts answers with the probe's first
// bytes, which tells the host that this process sees that directory as the host does.
// From then on PutPart headers may name a staged file under it instead of carrying chunks.

// probeSize bounds what is read of the probe file.
const probeSize = 64

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readProbe reads the host's probe file, if the plugin does staged reads and path is a
// regular file (not a symbolic link) at an absolute, clean path. It returns its first
// bytes and the staging directory it is in, or nothing.
func (s *grpcServer) readProbe(path string) ([]byte, string) {
	if !s.stagedReads || path == "" {
		return nil, ""
	}
	f, err := openRegular(path)
	if err != nil {
		s.log.Info("staged reads off: the host's staging directory is not readable here", "error", err)
		return nil, ""
	}
	defer f.Close()
	buf := make([]byte, probeSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		s.log.Info("staged reads off: reading the host's probe failed", "error", err)
		return nil, ""
	}
	if n == 0 {
		return nil, ""
	}
	return buf[:n], filepath.Dir(path)
}

// InDir tells whether path is absolute, clean and strictly below directory dir (the test
// both ends of a staged read make of a staged part's path).
func InDir(dir, path string) bool {
	if dir == "" || !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// openRegular opens path for reading if it is absolute and clean and names a regular
// file, not a symbolic link: it checks with Lstat and then that the opened file is the
// one checked, so a link swapped in between is refused too.
func openRegular(path string) (*os.File, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("%q is not an absolute, clean path", path)
	}
	before, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	after, err := f.Stat()
	if err != nil || !os.SameFile(before, after) {
		f.Close()
		return nil, fmt.Errorf("%s changed while it was opened", path)
	}
	return f, nil
}

// openStaged opens the staged part file path of size bytes for a PutPart, if staged reads
// are on and path is under the staging directory the probe showed. Every refusal wraps
// ErrDigestMismatch (DATA_LOSS): the host then checks its staged copy and sends it again
// or has the client send it again.
func (s *grpcServer) openStaged(path string, size int64, crc uint32, sha []byte) (*stagedReader, error) {
	s.mu.RLock()
	dir := s.stagingDir
	s.mu.RUnlock()
	if dir == "" {
		return nil, fmt.Errorf("%w: a staged part was sent, but this plugin reads no staged files", ErrDigestMismatch)
	}
	if !InDir(dir, path) {
		return nil, fmt.Errorf("%w: staged part %q is not under the staging directory", ErrDigestMismatch, path)
	}
	f, err := openRegular(path)
	if err != nil {
		return nil, fmt.Errorf("%w: staged part: %w", ErrDigestMismatch, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != size {
		err = fmt.Errorf("%s has %d bytes, the part %d", path, fi.Size(), size)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: staged part: %w", ErrDigestMismatch, err)
	}
	return &stagedReader{f: f, size: size, want: crc, sum: sha}, nil
}

// stagedReader reads a staged part file. Like streamReader, it returns io.EOF only after
// exactly size bytes whose CRC-32C is the one the host announced; otherwise an error
// wrapping ErrSizeMismatch or ErrDigestMismatch. Its digest is then the part's SHA-256 from
// the header: the host computed it over the bytes whose CRC-32C this checked.
type stagedReader struct {
	f        *os.File
	size     int64
	want     uint32
	sum      []byte
	n        int64
	crc      uint32
	finished bool
	err      error
}

func (r *stagedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.finished {
		return 0, io.EOF
	}
	if r.n == r.size {
		return 0, r.end()
	}
	if int64(len(p)) > r.size-r.n {
		p = p[:r.size-r.n]
	}
	n, err := r.f.Read(p)
	r.crc = crc32.Update(r.crc, castagnoli, p[:n])
	r.n += int64(n)
	if err == io.EOF && r.n < r.size {
		return n, r.fail(fmt.Errorf("%w: staged part ended after %d of %d bytes", ErrSizeMismatch, r.n, r.size))
	}
	if err != nil && err != io.EOF {
		return n, r.fail(fmt.Errorf("read staged part: %w", err))
	}
	if n == 0 && r.n == r.size {
		return 0, r.end()
	}
	return n, nil
}

// end checks the CRC-32C after the last byte.
func (r *stagedReader) end() error {
	if r.crc != r.want {
		return r.fail(fmt.Errorf("%w: the staged part's CRC-32C is %08x, the host's %08x", ErrDigestMismatch, r.crc, r.want))
	}
	r.finished = true
	return io.EOF
}

// writeTo copies the rest of the part to w through one buffer and returns the bytes
// written; io.EOF at the verified end is returned as nil.
func (r *stagedReader) writeTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(CopyBufferSize, max(r.size, 1)))
	var n int64
	for {
		m, err := r.Read(buf)
		if m > 0 {
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (r *stagedReader) fail(err error) error {
	r.err = err
	return err
}

func (r *stagedReader) Close() error { return r.f.Close() }
