package localstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Put implements sdk.Storage. It creates the parent directories, streams r into a hidden
// temporary file beside the target (".<name>.<random>.tmp") with sdk.CopyExact, checking
// ctx between chunks, syncs the file, renames it over the target and syncs the directory.
// On any failure before the rename, including a cancelled ctx, the temporary file is
// removed and the previous object, if any, is left as it was; if the directory cannot be
// synced after the rename, the new file is removed too. On Linux the file is written with
// direct I/O (direct_linux.go); memory per Put is bounded by its buffers.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (sdk.Object, error) {
	if err := sdk.ValidKey(key); err != nil {
		return sdk.Object{}, err
	}
	target := s.path(key)
	dir := filepath.Dir(target)
	if err := s.mkdirAll(dir); err != nil {
		return sdk.Object{}, err
	}
	f, tmp, err := s.createTemp(dir, "."+filepath.Base(target))
	if err != nil {
		return sdk.Object{}, mapErr("create temporary file in", dir, err)
	}
	defer s.temps.Release(tmp)
	committed := false
	defer func() {
		if !committed {
			f.Close() // a second Close only returns an error
			if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("removing temporary file", "path", tmp, "error", err)
			}
		}
	}()

	// r goes to CopyExact as is: the reader sdk.Serve passes is recognised and not hashed twice.
	w := newFileWriter(f)
	sum, err := sdk.CopyExact(ctxWriter{ctx: ctx, w: w}, r, size)
	if err != nil {
		w.Abort()
		return sdk.Object{}, mapErr("write", tmp, err)
	}
	if err := w.Close(); err != nil {
		return sdk.Object{}, mapErr("write", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return sdk.Object{}, mapErr("sync", tmp, err)
	}
	if err := f.Close(); err != nil {
		return sdk.Object{}, mapErr("close", tmp, err)
	}
	// ctx may have been cancelled after the last chunk: do not deliver for a caller that left.
	if err := ctx.Err(); err != nil {
		return sdk.Object{}, fmt.Errorf("local: put %s: %w", key, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return sdk.Object{}, mapErr("rename into", target, err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		// The rename may not survive a crash: do not report a delivery that might vanish.
		if rerr := os.Remove(target); rerr != nil {
			s.log.Error("removing file whose directory could not be synced", "path", target, "error", rerr)
		}
		return sdk.Object{}, mapErr("sync directory", dir, err)
	}
	s.log.Debug("stored", "key", key, "bytes", size)
	return sdk.Object{Key: key, Size: size, SHA256: sum, Location: target}, nil
}

// ctxWriter fails with ctx's error once ctx is done, so a Put stops between two chunks.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// mkdirAll creates dir and its missing parents below the root, syncing each parent in
// which it created an entry so that the new path survives a crash.
func (s *Store) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return s.confined(dir)
	}
	rel, err := filepath.Rel(s.root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("local: %s is not below the root %s", dir, s.root)
	}
	if rel == "." {
		return nil // the root exists; creating the file reports any problem with it
	}
	cur := s.root
	for _, seg := range strings.Split(filepath.ToSlash(rel), "/") {
		parent := cur
		cur = filepath.Join(cur, seg)
		err := os.Mkdir(cur, 0o755)
		switch {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return mapErr("sync directory", parent, err)
			}
		case errors.Is(err, fs.ErrExist):
			if fi, serr := os.Stat(cur); serr != nil || !fi.IsDir() {
				return fmt.Errorf("local: create directory %s: a file is in the way", cur)
			}
		default:
			return mapErr("create directory", cur, err)
		}
	}
	return s.confined(dir)
}

// createTemp creates the temporary file of a Put, never opening an existing file, and
// claims its name. The first choice is "<prefix>.tmp": the host gives every upload a key of
// its own, so a file of that name that this process is not writing is the remains of an
// earlier attempt (the plugin was killed mid-Put) and is replaced, which leaves no junk
// behind a retry. A second Put of the same key at the same time gets
// "<prefix>.<random>.tmp". Mode 0666 before umask.
func (s *Store) createTemp(dir, prefix string) (*os.File, string, error) {
	if name := filepath.Join(dir, sdk.TempName(prefix, ".tmp")); s.temps.Claim(name) {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			s.log.Info("removing the temporary file of an interrupted attempt", "path", name)
			if err = os.Remove(name); err == nil || errors.Is(err, fs.ErrNotExist) {
				f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
			}
		}
		if err == nil {
			return f, name, nil
		}
		s.temps.Release(name)
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
	}
	for range 100 {
		name := filepath.Join(dir, sdk.RandomTempName(prefix, ".tmp"))
		if !s.temps.Claim(name) {
			continue
		}
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			return f, name, nil
		}
		s.temps.Release(name)
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("local: no unused temporary name in %s", dir)
}

// syncDir flushes a directory's entries (a rename or a new file) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// confined checks that dir, with every symbolic link in it resolved, is still below the
// root: a link planted under the root must not lead writes out of it.
func (s *Store) confined(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return mapErr("resolve", dir, err)
	}
	root, err := filepath.EvalSymlinks(s.root)
	if err != nil {
		return mapErr("resolve", s.root, err)
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("local: %w: %s leads out of the root %s (a symbolic link)", sdk.ErrPermission, dir, s.root)
	}
	return nil
}
