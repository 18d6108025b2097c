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

// Part-wise storage (sdk.PartStorage), in the layout of package partfile: an unfinished
// object of key "dir/name" is "dir/.name.<id>.partial", into which each part is written at
// its offset (with direct I/O when the part size is a multiple of the block size) and
// fdatasynced before its receipt, and its journal "dir/.name.<id>.journal". Commit renames
// the .partial file onto the target and syncs the directory, as Put does.

var _ sdk.PartStorage = (*Store)(nil)

// PartLimits implements sdk.PartStorage: parts of any size, up to partfile.MaxParts.
func (s *Store) PartLimits() sdk.PartLimits { return sdk.PartLimits{MaxParts: partfile.MaxParts} }

// files returns the target, data file and journal paths of h.
func (s *Store) files(h partfile.Handle) (target, data, journal string) {
	target = s.path(h.Key)
	dir := filepath.Dir(target)
	return target, filepath.Join(dir, h.DataName()), filepath.Join(dir, h.JournalName())
}

// BeginObject implements sdk.PartStorage. It aborts the unfinished objects of key, creates
// the parent directories, an empty data file and the journal, and syncs the directory, so
// that the handle stays good after a crash.
func (s *Store) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	h, err := partfile.New(key, spec)
	if err != nil {
		return nil, fmt.Errorf("local: begin %s: %w", key, err)
	}
	target, data, journal := s.files(h)
	unlock, err := s.parts.Exclusive(ctx, "key "+target, false)
	if err != nil {
		return nil, fmt.Errorf("local: begin %s: %w", key, err)
	}
	defer unlock()
	if err := s.abortAll(ctx, key); err != nil {
		return nil, err
	}
	dir := filepath.Dir(target)
	if err := s.mkdirAll(dir); err != nil {
		return nil, err
	}
	if err := createPartFiles(h, data, journal); err != nil {
		os.Remove(journal)
		os.Remove(data)
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		os.Remove(journal)
		os.Remove(data)
		return nil, mapErr("sync directory", dir, err)
	}
	s.log.Debug("began part-wise object", "key", key, "bytes", h.Size, "parts", h.Parts)
	return h.Marshal(), nil
}

// createPartFiles creates the data file, then the journal with its header: a journal
// exists only beside its data file until a commit renames the data file away.
func createPartFiles(h partfile.Handle, data, journal string) error {
	f, err := os.OpenFile(data, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return mapErr("create", data, err)
	}
	if err := f.Close(); err != nil {
		return mapErr("close", data, err)
	}
	j, err := os.OpenFile(journal, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return mapErr("create", journal, err)
	}
	defer j.Close()
	if err := partfile.InitJournal(journalFile{j}, h); err != nil {
		return mapErr("write", journal, err)
	}
	return nil
}

// journalFile is a journal on disk whose Sync is fdatasync.
type journalFile struct{ *os.File }

func (j journalFile) Sync() error { return datasync(j.File) }

// PutPart implements sdk.PartStorage: see package partfile for the order of writes and
// syncs. The part's bytes go straight from the stream to the data file at the part's offset;
// memory per call is bounded by the direct-I/O buffers (direct_linux.go).
func (s *Store) PutPart(ctx context.Context, handle []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	h, err := partfile.Parse(handle)
	if err != nil {
		return nil, fmt.Errorf("local: put part %d: %w", p.Number, err)
	}
	_, data, journal := s.files(h)
	ctx, release, err := s.parts.Part(ctx, data, p.Number)
	if err != nil {
		return nil, fmt.Errorf("local: put part %d of %s: %w", p.Number, h.Key, err)
	}
	defer release()
	j, err := openPartFile(journal, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	f, err := openPartFile(data, os.O_WRONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close() // a second Close only returns an error

	part, err := partfile.StartPart(journalFile{j}, h, p)
	if err != nil {
		return nil, mapErr("start part of", data, err)
	}
	if _, err := f.Seek(part.Offset(), io.SeekStart); err != nil {
		return nil, mapErr("seek", data, err)
	}
	var w fileWriter = bufferedWriter{f}
	if part.Offset()%directBlock == 0 && h.PartSize%directBlock == 0 {
		// Whole blocks of every part go direct, so no block is shared by two parts (or by a
		// direct and a buffered write); the last part's tail is written buffered.
		w = newFileWriter(f)
	}
	if err := part.Copy(ctxWriter{ctx: ctx, w: w}, r); err != nil {
		w.Abort()
		return nil, mapErr("write", data, err)
	}
	if err := w.Close(); err != nil {
		return nil, mapErr("write", data, err)
	}
	if err := datasync(f); err != nil {
		return nil, mapErr("sync", data, err)
	}
	if err := f.Close(); err != nil {
		return nil, mapErr("close", data, err)
	}
	if err := ctx.Err(); err != nil { // the caller left, or an abort cancelled the part
		return nil, fmt.Errorf("local: put part %d of %s: %w", p.Number, h.Key, err)
	}
	receipt, err := part.Finish()
	if err != nil {
		return nil, mapErr("record part in", journal, err)
	}
	return receipt, nil
}

// openPartFile opens a file of an unfinished object; a missing file (or directory) is
// sdk.ErrNotFound.
func openPartFile(name string, flag int) (*os.File, error) {
	f, err := os.OpenFile(name, flag, 0)
	if isNotExist(err) {
		return nil, fmt.Errorf("local: %w: no unfinished object %s (committed, aborted or lost)", sdk.ErrNotFound, name)
	}
	if err != nil {
		return nil, mapErr("open", name, err)
	}
	return f, nil
}

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
	f, err := os.OpenFile(data, os.O_RDWR, 0)
	switch {
	case isNotExist(err): // renamed by an earlier commit that did not finish
		if err := s.committed(h, target); err != nil {
			return sdk.Object{}, err
		}
	case err != nil:
		return sdk.Object{}, mapErr("open", data, err)
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
