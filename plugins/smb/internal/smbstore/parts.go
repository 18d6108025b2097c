package smbstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/hirochachacha/go-smb2"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

// Part-wise storage (sdk.PartStorage), in the layout of package partfile, on the share: an
// unfinished object of key "dir/name" is "dir/.name.<id>.partial", into which each part is
// written at its offset (1 MiB writes, up to four in flight, as Put) and flushed before its
// receipt, and its journal "dir/.name.<id>.journal". Commit flushes the .partial file and
// renames it onto the target the way Put does.
//
// Files are opened on a context that the caller's cancellation does not reach: go-smb2
// cannot close a handle on a cancelled context, and while a handle is open (go-smb2 opens
// without FILE_SHARE_DELETE) the file can be neither renamed nor removed. The watchdog
// bounds every request instead.

// PartLimits implements sdk.PartStorage: parts of any size, up to partfile.MaxParts.
func (st *Store) PartLimits() sdk.PartLimits { return sdk.PartLimits{MaxParts: partfile.MaxParts} }

// partNames returns the share paths of h's target, data file and journal.
func (st *Store) partNames(h partfile.Handle) (target, data, journal string) {
	target = st.cfg.join(h.Key)
	dir := shareDir(target)
	return target, path.Join(dir, h.DataName()), path.Join(dir, h.JournalName())
}

// shareDir returns the directory of a share path, "" for the share's root.
func shareDir(name string) string {
	if d := path.Dir(name); d != "." {
		return d
	}
	return ""
}

// BeginObject implements sdk.PartStorage. It aborts the unfinished objects of key, creates
// the directories, an empty data file, and the journal with its header, flushed.
func (st *Store) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	if err := st.begin(); err != nil {
		return nil, err
	}
	defer st.end()
	h, err := partfile.New(key, spec)
	if err != nil {
		return nil, fmt.Errorf("smb: begin %q: %w", key, err)
	}
	target, data, journal := st.partNames(h)
	unlock, err := st.parts.Exclusive(ctx, "key "+target, false)
	if err != nil {
		return nil, fmt.Errorf("smb: begin %q: %w", key, err)
	}
	defer unlock()
	if err := st.abortAll(ctx, key); err != nil {
		return nil, err
	}
	err = st.run(ctx, func(s *session, _ *smb2.Share) error {
		fs := s.share.WithContext(context.WithoutCancel(ctx))
		if dir := shareDir(target); dir != "" {
			if err := fs.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		// The id is random, so truncating (on a retry after a lost connection) can only
		// meet this call's own file. The data file first: a journal exists only beside it.
		f, err := fs.OpenFile(data, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		j, err := fs.OpenFile(journal, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		err = partfile.InitJournal(j, h)
		if cerr := j.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		st.removeFiles(ctx, journal, data)
		return nil, fmt.Errorf("smb: begin %q: %w", key, st.mapError(err))
	}
	st.log.Debug("began part-wise object", "key", key, "bytes", h.Size, "parts", h.Parts)
	return h.Marshal(), nil
}

// openFile is a file open on session s whose requests the watchdog guards (it drops s and
// calls cancel when one hangs). It is a partfile.File.
type openFile struct {
	st     *Store
	s      *session
	f      *smb2.File
	cancel context.CancelFunc
}

func (o *openFile) ReadAt(b []byte, off int64) (int, error) {
	defer o.st.watch(o.s, o.cancel)()
	return o.f.ReadAt(b, off)
}

func (o *openFile) WriteAt(b []byte, off int64) (int, error) {
	defer o.st.watch(o.s, o.cancel)()
	return o.f.WriteAt(b, off)
}

// Sync flushes the file: the server writes it to disk (Samba: with "strict sync", its
// default) before it answers.
func (o *openFile) Sync() error {
	defer o.st.watch(o.s, o.cancel)()
	return o.f.Sync()
}

func (o *openFile) Close() error {
	defer o.st.watch(o.s, o.cancel)()
	return o.f.Close()
}

// PutPart implements sdk.PartStorage: see package partfile for the order of writes and
// flushes. The part's bytes go from the stream to the share at the part's offset with up to
// writeDepth writes of writeChunk bytes in flight, as Put's; a broken connection fails the
// part (it is not retried: the stream is consumed).
func (st *Store) PutPart(ctx context.Context, handle []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	if err := st.begin(); err != nil {
		return nil, err
	}
	defer st.end()
	h, err := partfile.Parse(handle)
	if err != nil {
		return nil, fmt.Errorf("smb: put part %d: %w", p.Number, err)
	}
	_, data, journal := st.partNames(h)
	ctx, release, err := st.parts.Part(ctx, data, p.Number)
	if err != nil {
		return nil, fmt.Errorf("smb: put part %d of %q: %w", p.Number, h.Key, err)
	}
	defer release()
	fctx, fcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer fcancel()
	var j, f *openFile
	err = st.run(ctx, func(s *session, _ *smb2.Share) error {
		fs := s.share.WithContext(fctx)
		jf, err := fs.OpenFile(journal, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		df, err := fs.OpenFile(data, os.O_WRONLY, 0)
		if err != nil {
			_ = jf.Close()
			return err
		}
		j, f = &openFile{st, s, jf, fcancel}, &openFile{st, s, df, fcancel}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("smb: put part %d of %q: %w", p.Number, h.Key, st.mapError(err))
	}
	defer j.Close()
	defer f.Close()

	receipt, err := st.writePart(ctx, j, f, h, p, r)
	if err != nil {
		return nil, fmt.Errorf("smb: put part %d of %q: %w", p.Number, h.Key, st.mapError(err))
	}
	return receipt, nil
}

func (st *Store) writePart(ctx context.Context, j, f *openFile, h partfile.Handle, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	part, err := partfile.StartPart(j, h, p)
	if err != nil {
		return nil, err
	}
	w := newFileWriter(st, ctx, f.cancel, p.Size)
	w.s, w.f, w.off = f.s, f.f, part.Offset()
	err = part.Copy(w, r)
	if werr := w.finish(err == nil); err == nil && werr != nil {
		err = werr
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = ctx.Err() // the caller left, or an abort cancelled the part
	}
	if err != nil {
		return nil, err
	}
	return part.Finish()
}

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
