package localstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

// The end of a part-wise object: commit or abort (parts.go has the beginning).

// CommitObject implements sdk.PartStorage: it checks the receipts against the journal,
// syncs the data file, renames it onto the target (replacing a file there), syncs the
// directory and removes the journal. If the directory cannot be synced the error is
// returned and everything is left as it is: a retry syncs again before it reports the
// object. A commit that finds the data file gone but the journal there (an earlier commit
// renamed it), or neither file but the target with the object's size, reports the object.
func (s *Store) CommitObject(ctx context.Context, handle []byte, receipts [][]byte, sha256 []byte) (sdk.Object, error) {
	h, err := partfile.Parse(handle)
	if err != nil {
		return sdk.Object{}, fmt.Errorf("local: commit: %w", err)
	}
	target, data, journal := s.files(h)
	unlock, err := s.parts.Exclusive(ctx, data, false)
	if err != nil {
		return sdk.Object{}, fmt.Errorf("local: commit %s: %w", h.Key, err)
	}
	defer unlock()
	obj := sdk.Object{Key: h.Key, Size: h.Size, SHA256: sha256, Location: target}

	j, err := openPartFile(journal, os.O_RDONLY)
	if errors.Is(err, sdk.ErrNotFound) {
		if _, derr := os.Lstat(data); derr == nil {
			return sdk.Object{}, fmt.Errorf("local: commit %s: %w: the object's journal is gone (an abort was interrupted)", h.Key, sdk.ErrNotFound)
		}
		return obj, s.committed(h, target)
	}
	if err != nil {
		return sdk.Object{}, err
	}
	err = partfile.Verify(j, h, receipts)
	j.Close()
	if err != nil {
		return sdk.Object{}, mapErr("commit", data, err)
	}
	f, err := openPartFile(data, os.O_RDWR) // never a symbolic link put in its place
	_, lerr := os.Lstat(data)
	switch {
	case err != nil && isNotExist(lerr): // renamed by an earlier commit that did not finish
		if err := s.committed(h, target); err != nil {
			return sdk.Object{}, err
		}
	case err != nil:
		return sdk.Object{}, err
	default:
		if err := syncData(f, h.Size); err != nil {
			return sdk.Object{}, mapErr("commit", data, err)
		}
		if err := ctx.Err(); err != nil {
			return sdk.Object{}, fmt.Errorf("local: commit %s: %w", h.Key, err)
		}
		if err := os.Rename(data, target); err != nil {
			return sdk.Object{}, mapErr("rename into", target, err)
		}
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return sdk.Object{}, mapErr("sync directory", filepath.Dir(target), err)
	}
	if err := os.Remove(journal); err != nil && !isNotExist(err) {
		s.log.Warn("removing the journal of a committed object", "path", journal, "error", err)
	}
	s.log.Debug("committed part-wise object", "key", h.Key, "bytes", h.Size)
	return obj, nil
}

// syncData checks that f has size bytes, fsyncs and closes it.
func syncData(f *os.File, size int64) error {
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("%w: the data file has %d bytes, the object %d", sdk.ErrStaleReceipt, fi.Size(), size)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// committed checks that h's object is in place under its key (an earlier commit of h
// renamed it) and syncs its directory; else the handle's object is gone: sdk.ErrNotFound.
func (s *Store) committed(h partfile.Handle, target string) error {
	fi, err := os.Stat(target)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != h.Size {
		return fmt.Errorf("local: commit %s: %w: no unfinished object of this handle (aborted or lost)", h.Key, sdk.ErrNotFound)
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return mapErr("sync directory", filepath.Dir(target), err)
	}
	return nil
}

// AbortObject implements sdk.PartStorage. With a handle it cancels the parts of it being
// written, waits for them, and removes the journal and then the data file; without one, it
// does so for every unfinished object of key, found by name in the target's directory.
func (s *Store) AbortObject(ctx context.Context, key string, handle []byte) error {
	if err := sdk.ValidKey(key); err != nil {
		return err
	}
	if handle == nil {
		target := s.path(key)
		unlock, err := s.parts.Exclusive(ctx, "key "+target, false)
		if err != nil {
			return fmt.Errorf("local: abort %s: %w", key, err)
		}
		defer unlock()
		return s.abortAll(ctx, key)
	}
	h, err := partfile.Parse(handle)
	if err != nil {
		return fmt.Errorf("local: abort %s: %w", key, err)
	}
	if h.Key != key {
		return fmt.Errorf("local: abort %s: %w: the handle is of key %q", key, sdk.ErrNotFound, h.Key)
	}
	return s.abort(ctx, h, true)
}

// abort removes h's files. With check set, a journal of another object (h's sizes were
// edited) makes it fail with sdk.ErrNotFound instead.
func (s *Store) abort(ctx context.Context, h partfile.Handle, check bool) error {
	target, data, journal := s.files(h)
	unlock, err := s.parts.Exclusive(ctx, data, true)
	if err != nil {
		return fmt.Errorf("local: abort %s: %w", h.Key, err)
	}
	defer unlock()
	if check {
		if j, err := os.Open(journal); err == nil {
			err = partfile.CheckJournal(j, h)
			j.Close()
			if err != nil {
				return mapErr("abort", data, err)
			}
		}
	}
	for _, name := range []string{journal, data} {
		if err := os.Remove(name); err != nil && !isNotExist(err) {
			return mapErr("remove", name, err)
		}
	}
	if err := syncDir(filepath.Dir(target)); err != nil && !isNotExist(err) {
		return mapErr("sync directory", filepath.Dir(target), err)
	}
	return nil
}

// abortAll aborts every unfinished object of key. The caller holds the key's lock.
func (s *Store) abortAll(ctx context.Context, key string) error {
	dir := filepath.Dir(s.path(key))
	d, err := os.Open(dir)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return mapErr("list", dir, err)
	}
	ids := map[[8]byte]bool{}
	for {
		names, err := d.Readdirnames(256) // in batches: a directory may hold many files
		for _, name := range names {
			if id, _, ok := partfile.ParseName(key, name); ok {
				ids[id] = true
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.Close()
			return mapErr("list", dir, err)
		}
	}
	d.Close()
	for id := range ids {
		s.log.Info("removing an unfinished part-wise object", "key", key, "id", fmt.Sprintf("%x", id))
		if err := s.abort(ctx, partfile.WithID(key, id), false); err != nil {
			return err
		}
	}
	return nil
}
