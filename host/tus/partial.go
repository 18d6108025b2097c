package tus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
)

// The bytes of a tus upload that do not make a whole part yet live in the upload's staging
// directory, in tus-<n>.partial: the first bytes of part n (and, after a PATCH with
// Upload-Checksum, possibly of part n+1). The file is only appended to and is fdatasynced
// before its length counts in the offset, so the offset HEAD reports is always on disk.
// Once it holds a whole part, the part goes through the upload service (Service.PutPart)
// like any other, is recorded and delivered as usual; then the rest, if any, moves to the
// next tus-<n+1>.partial and the old file is removed. A crash between two of these steps
// leaves a state that load repairs: the parts recorded in the database win, and a
// partial file that starts before the first part not yet recorded is trimmed.

// syncEvery is how many bytes a PATCH writes between two fdatasyncs (and so how much a
// HEAD may lag behind the bytes received).
const syncEvery = 4 << 20

// state is the tus state of one upload. mu guards it; while a PATCH holds the upload
// (active), base and length are its durable progress and HEAD answers from them.
type state struct {
	mu     sync.Mutex
	active bool
	base   int   // the part tus-<base>.partial starts
	length int64 // durable bytes in it
}

func (st *state) set(base int, length int64) {
	st.mu.Lock()
	st.base, st.length = base, length
	st.mu.Unlock()
}

func (st *state) get() (int, int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.base, st.length
}

func partialPath(dir string, n int) string {
	return filepath.Join(dir, fmt.Sprintf("tus-%06d.partial", n))
}

// offset is the number of bytes received of upload u in state base/length.
func offset(u *host.Upload, base int, length int64) int64 {
	if base >= u.TotalParts {
		return u.TotalSize // every part is recorded
	}
	return int64(base)*u.ChunkSize + length
}

// firstPending returns the number of the first part of u not recorded as uploaded.
func (h *Handler) firstPending(ctx context.Context, u *host.Upload) (int, error) {
	if u.UploadedParts == u.TotalParts {
		return u.TotalParts, nil
	}
	v, err := h.svc.Status(ctx, u.ID, true)
	if err != nil {
		return 0, err
	}
	for _, p := range v.Parts {
		if p.Status != host.PartUploaded {
			return p.Number, nil
		}
	}
	return u.TotalParts, nil
}

// loadLocked reads u's state from disk into st (st.mu held) and repairs what a crash or
// a reset of parts by the service left: it returns the first part not recorded.
func (h *Handler) loadLocked(ctx context.Context, u *host.Upload, st *state) (int, error) {
	p, err := h.firstPending(ctx, u)
	if err != nil {
		return 0, err
	}
	dir := h.svc.StagingDir(u.ID)
	names, _ := filepath.Glob(filepath.Join(dir, "tus-*.partial"))
	var bases []int
	for _, name := range names {
		s := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), "tus-"), ".partial")
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			bases = append(bases, n)
		}
	}
	sort.Ints(bases)
	st.base, st.length = p, 0
	if len(bases) == 0 {
		return p, nil
	}
	// Only the newest file counts: an older one is the remainder of a move a crash cut.
	for _, n := range bases[:len(bases)-1] {
		os.Remove(partialPath(dir, n))
	}
	base := bases[len(bases)-1]
	path := partialPath(dir, base)
	length, err := syncedSize(path)
	if err != nil {
		return 0, err
	}
	end := int64(base)*u.ChunkSize + length
	if base > p || end < int64(p)*u.ChunkSize {
		// Parts before the file went back to pending (the service lost them), or the
		// file is behind the parts recorded: its bytes are of no use.
		if err := removeSynced(path); err != nil {
			return 0, err
		}
		return p, nil
	}
	if end > u.TotalSize {
		return 0, fmt.Errorf("tus: %s holds %d bytes, past the upload's size", path, length)
	}
	st.base, st.length = base, length
	return p, nil
}

// syncedSize fdatasyncs the file at path and returns its size.
func syncedSize(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("tus: open partial chunk: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("tus: sync partial chunk: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("tus: stat partial chunk: %w", err)
	}
	return info.Size(), nil
}

func removeSynced(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tus: remove partial chunk: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("tus: open staging directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("tus: sync staging directory: %w", err)
	}
	return nil
}

// openPartial opens tus-<base>.partial for appending, creating it (durably) if needed.
func openPartial(dir string, base int) (*os.File, error) {
	path := partialPath(dir, base)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tus: open partial chunk: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tus: create staging directory: %w", err)
	}
	if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("tus: create partial chunk: %w", err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// carve hands every whole part the partial file holds to the upload service and moves the
// rest to the next partial file. Parts before recorded are in the database already and are
// only dropped from the file.
func (h *Handler) carve(ctx context.Context, u *host.Upload, st *state, recorded int) error {
	dir := h.svc.StagingDir(u.ID)
	for {
		base, length := st.get()
		if base >= u.TotalParts {
			return nil
		}
		size := u.PartSize(base)
		if length < size {
			return nil
		}
		path := partialPath(dir, base)
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("tus: open partial chunk: %w", err)
		}
		if base >= recorded {
			err = h.putPart(ctx, u, base, io.NewSectionReader(f, 0, size), size)
		}
		if err == nil && length > size {
			err = moveTail(f, dir, base+1, size, length-size)
		}
		f.Close()
		if err != nil {
			return err
		}
		if err := removeSynced(path); err != nil {
			return err
		}
		st.set(base+1, length-size)
	}
}

// moveTail copies n bytes of f from off into a new tus-<base>.partial, durably.
func moveTail(f *os.File, dir string, base int, off, n int64) error {
	tmp, err := os.CreateTemp(dir, ".tus-*.tmp")
	if err != nil {
		return fmt.Errorf("tus: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, io.NewSectionReader(f, off, n))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), partialPath(dir, base))
	}
	if err != nil {
		return fmt.Errorf("tus: move the rest of a partial chunk: %w", err)
	}
	return syncDir(dir)
}

// partRetry bounds how long a whole part waits for room when the server is busy
// (too_many_requests: parts in flight, or parts not yet delivered to the backend): the
// PATCH is slowed down rather than refused, which tus clients would not retry.
const partRetry = 2 * time.Minute

// putPart stores part n of u through the upload service.
func (h *Handler) putPart(ctx context.Context, u *host.Upload, n int, r io.Reader, size int64) error {
	claims := &auth.PartClaims{UploadID: u.ID, PartNumber: n, ExpectedSize: size}
	deadline := time.Now().Add(partRetry)
	wait := 100 * time.Millisecond
	for {
		done := h.metrics.PartStarted()
		_, err := h.svc.PutPart(context.WithoutCancel(ctx), upload.PartRequest{
			UploadID: u.ID, Part: n, Claims: claims, Body: r, ContentLength: size,
		})
		if err == nil {
			done("", size)
			return nil
		}
		done(string(host.ErrorCode(err)), 0)
		if host.ErrorCode(err) != host.CodeTooManyRequests || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
		if s, ok := r.(io.Seeker); ok {
			if _, err := s.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("tus: rewind part: %w", err)
			}
		}
	}
}
