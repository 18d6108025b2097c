package smbstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/hirochachacha/go-smb2"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

// The end of a part-wise object: commit or abort (parts.go has the beginning).

// Outcomes of the first step of a commit.
const (
	commitReady   = iota + 1 // receipts verified, the data file flushed: rename it
	commitRenamed            // receipts verified, the data file gone: an earlier commit renamed it
	commitDone               // neither file: committed before, or aborted
)

// CommitObject implements sdk.PartStorage: it verifies the receipts against the journal,
// flushes the data file, renames it onto the target (replacing a file there as Put does),
// and removes the journal. A commit that finds the data file gone but the journal there (an
// earlier commit renamed it), or neither file but the target with the object's size,
// reports the object.
func (st *Store) CommitObject(ctx context.Context, handle []byte, receipts [][]byte, sha256 []byte) (sdk.Object, error) {
	if err := st.begin(); err != nil {
		return sdk.Object{}, err
	}
	defer st.end()
	h, err := partfile.Parse(handle)
	if err != nil {
		return sdk.Object{}, fmt.Errorf("smb: commit: %w", err)
	}
	target, data, journal := st.partNames(h)
	unlock, err := st.parts.Exclusive(ctx, data, false)
	if err != nil {
		return sdk.Object{}, fmt.Errorf("smb: commit %q: %w", h.Key, err)
	}
	defer unlock()
	fail := func(err error) (sdk.Object, error) {
		return sdk.Object{}, fmt.Errorf("smb: commit %q: %w", h.Key, st.mapError(err))
	}

	var state int
	err = st.run(ctx, func(s *session, _ *smb2.Share) error {
		var cerr error
		state, cerr = commitCheck(s.share.WithContext(context.WithoutCancel(ctx)), h, data, journal, receipts)
		return cerr
	})
	if err != nil {
		return fail(err)
	}
	if state == commitReady {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := st.commit(ctx, data, target); err != nil {
			return fail(fmt.Errorf("renaming %s into place: %w", data, err))
		}
	} else {
		var fi os.FileInfo
		err := st.do(ctx, func(fs *smb2.Share) (err error) {
			fi, err = fs.Stat(target)
			return err
		})
		if errors.Is(err, os.ErrNotExist) || (err == nil && (fi.IsDir() || fi.Size() != h.Size)) {
			return fail(fmt.Errorf("%w: no unfinished object of this handle (aborted or lost)", sdk.ErrNotFound))
		}
		if err != nil {
			return fail(err)
		}
	}
	if state != commitDone {
		st.removeFiles(ctx, journal)
	}
	st.log.Debug("committed part-wise object", "key", h.Key, "bytes", h.Size)
	return sdk.Object{Key: h.Key, Size: h.Size, SHA256: sha256, Location: st.cfg.location(h.Key)}, nil
}

// commitCheck is the first step of a commit: it verifies the receipts against the journal
// and flushes the data file, and tells what is left to do.
func commitCheck(fs *smb2.Share, h partfile.Handle, data, journal string, receipts [][]byte) (int, error) {
	j, err := fs.OpenFile(journal, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		_, derr := fs.Lstat(data)
		if derr == nil {
			return 0, fmt.Errorf("%w: the object's journal is gone (an abort was interrupted)", sdk.ErrNotFound)
		}
		if !errors.Is(derr, os.ErrNotExist) {
			return 0, derr
		}
		return commitDone, nil
	}
	if err != nil {
		return 0, err
	}
	err = partfile.Verify(j, h, receipts)
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	f, err := fs.OpenFile(data, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return commitRenamed, nil
	}
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != h.Size {
		err = fmt.Errorf("%w: the data file has %d bytes, the object %d", sdk.ErrStaleReceipt, fi.Size(), h.Size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return commitReady, nil
}

// AbortObject implements sdk.PartStorage. With a handle it cancels the parts of it being
// written, waits for them, and removes the journal and then the data file; without one, it
// does so for every unfinished object of key, found by name in the target's directory.
func (st *Store) AbortObject(ctx context.Context, key string, handle []byte) error {
	if err := st.begin(); err != nil {
		return err
	}
	defer st.end()
	if err := sdk.ValidKey(key); err != nil {
		return err
	}
	if handle == nil {
		unlock, err := st.parts.Exclusive(ctx, "key "+st.cfg.join(key), false)
		if err != nil {
			return fmt.Errorf("smb: abort %q: %w", key, err)
		}
		defer unlock()
		return st.abortAll(ctx, key)
	}
	h, err := partfile.Parse(handle)
	if err != nil {
		return fmt.Errorf("smb: abort %q: %w", key, err)
	}
	if h.Key != key {
		return fmt.Errorf("smb: abort %q: %w: the handle is of key %q", key, sdk.ErrNotFound, h.Key)
	}
	return st.abort(ctx, h, true)
}

// abort removes h's files. With check set, a journal of another object (h's sizes were
// edited) makes it fail with sdk.ErrNotFound instead.
func (st *Store) abort(ctx context.Context, h partfile.Handle, check bool) error {
	_, data, journal := st.partNames(h)
	unlock, err := st.parts.Exclusive(ctx, data, true)
	if err != nil {
		return fmt.Errorf("smb: abort %q: %w", h.Key, err)
	}
	defer unlock()
	err = st.run(ctx, func(s *session, _ *smb2.Share) error {
		fs := s.share.WithContext(context.WithoutCancel(ctx))
		if check {
			j, err := fs.OpenFile(journal, os.O_RDONLY, 0)
			if err == nil {
				err = partfile.CheckJournal(j, h)
				_ = j.Close()
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		for _, name := range []string{journal, data} {
			if err := fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("smb: abort %q: %w", h.Key, st.mapError(err))
	}
	return nil
}

// abortAll aborts every unfinished object of key. The caller holds the key's lock. The
// server filters the directory by the names' common prefix, so a large directory is not
// listed whole.
func (st *Store) abortAll(ctx context.Context, key string) error {
	dir := shareDir(st.cfg.join(key))
	// Glob takes "[" for a character class; "?" matches it (and anything), and ParseName
	// below keeps the exact names.
	pattern := strings.NewReplacer("[", "?", "]", "?").Replace(partfile.Prefix(key)) + "*"
	var names []string
	err := st.do(ctx, func(fs *smb2.Share) error {
		names = names[:0]
		// Glob treats a directory it cannot read as empty: tell a missing one from an error.
		if dir != "" {
			fi, err := fs.Stat(dir)
			if errors.Is(err, os.ErrNotExist) || (err == nil && !fi.IsDir()) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		matches, err := fs.Glob(path.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, m := range matches {
			names = append(names, m[strings.LastIndexAny(m, `\/`)+1:])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("smb: listing unfinished objects of %q: %w", key, st.mapError(err))
	}
	ids := map[[8]byte]bool{}
	for _, name := range names {
		if id, _, ok := partfile.ParseName(key, name); ok {
			ids[id] = true
		}
	}
	for id := range ids {
		st.log.Info("removing an unfinished part-wise object", "key", key, "id", fmt.Sprintf("%x", id))
		if err := st.abort(ctx, partfile.WithID(key, id), false); err != nil {
			return err
		}
	}
	return nil
}

// removeFiles removes files after a failure or a commit, on a fresh context; failures are
// logged (AbortObject by key finds what is left).
func (st *Store) removeFiles(ctx context.Context, names ...string) {
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	for _, name := range names {
		err := st.do(ctx, func(fs *smb2.Share) error { return fs.Remove(name) })
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			st.log.Warn("removing a file of an unfinished object failed", "path", name, "error", err)
		}
	}
}
