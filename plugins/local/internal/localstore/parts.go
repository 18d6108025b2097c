package localstore

import (
	"context"
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
// the parent directories, the data file (sparse, of the object's size) and the journal,
// and syncs the directory, so that the handle stays good after a crash.
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
	// Its size from the start, as a sparse file: parts are written inside it, never
	// extending it, and each part's blocks are allocated as it is written (sdk.Allocate).
	if err := f.Truncate(h.Size); err != nil {
		f.Close()
		return mapErr("size", data, err)
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
	op, err := s.startPart(ctx, handle, p, "put")
	if err != nil {
		return nil, err
	}
	defer op.done()
	ctx, h, data, j, journal := op.ctx, op.h, op.data, op.journal, op.journalPath
	f, err := openPartFile(data, os.O_WRONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close() // a second Close only returns an error

	part, err := partfile.StartPart(journalFile{j}, h, p)
	if err != nil {
		return nil, mapErr("start part of", data, err)
	}
	if err := sdk.Allocate(f, part.Offset(), p.Size); err != nil {
		return nil, mapErr("allocate", data, err)
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

// partOp is a write of one part of an unfinished object, from startPart: the part's lock
// is held and its journal open until done.
type partOp struct {
	ctx         context.Context // cancelled by an abort of the object
	h           partfile.Handle
	data        string
	journal     *os.File
	journalPath string
	release     func()
}

func (o *partOp) done() {
	o.journal.Close()
	o.release()
}

// startPart parses handle, takes part p's lock and opens the journal, for the call named
// what (put, record).
func (s *Store) startPart(ctx context.Context, handle []byte, p sdk.PartInfo, what string) (*partOp, error) {
	h, err := partfile.Parse(handle)
	if err != nil {
		return nil, fmt.Errorf("local: %s part %d: %w", what, p.Number, err)
	}
	_, data, journal := s.files(h)
	ctx, release, err := s.parts.Part(ctx, data, p.Number)
	if err != nil {
		return nil, fmt.Errorf("local: %s part %d of %s: %w", what, p.Number, h.Key, err)
	}
	j, err := openPartFile(journal, os.O_RDWR)
	if err != nil {
		release()
		return nil, err
	}
	return &partOp{ctx: ctx, h: h, data: data, journal: j, journalPath: journal, release: release}, nil
}

// openPartFile opens a file of an unfinished object; a missing file (or directory) is
// sdk.ErrNotFound, and so is one that is no longer a regular file with that one name
// (replaced by a symbolic link, which is never followed, a hard link to a file elsewhere,
// or anything else): the object is lost, and is started again, rather than parts written
// through the link out of the root.
func openPartFile(name string, flag int) (*os.File, error) {
	f, err := os.OpenFile(name, flag|noFollow, 0)
	if isNotExist(err) {
		return nil, fmt.Errorf("local: %w: no unfinished object %s (committed, aborted or lost)", sdk.ErrNotFound, name)
	}
	if err != nil {
		if fi, lerr := os.Lstat(name); lerr == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("local: %w: %s is no longer a regular file (%s); the unfinished object is lost", sdk.ErrNotFound, name, fi.Mode().Type())
		}
		return nil, mapErr("open", name, err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return nil, mapErr("stat", name, err)
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, fmt.Errorf("local: %w: %s is no longer a regular file (%s); the unfinished object is lost", sdk.ErrNotFound, name, fi.Mode().Type())
	case !sdk.SoleName(fi):
		// A hard link put in its place: the file is also another, maybe out of the root.
		f.Close()
		return nil, fmt.Errorf("local: %w: %s has other names (a hard link put in its place); the unfinished object is lost", sdk.ErrNotFound, name)
	}
	return f, nil
}

var _ sdk.PartFiles = (*Store)(nil)

// PartFile implements sdk.PartFiles: the host may write parts into the data file itself.
func (s *Store) PartFile(ctx context.Context, handle []byte) (string, error) {
	h, err := partfile.Parse(handle)
	if err != nil {
		return "", fmt.Errorf("local: part file: %w", err)
	}
	_, data, journal := s.files(h)
	j, err := openPartFile(journal, os.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer j.Close()
	if err := partfile.CheckJournal(j, h); err != nil {
		return "", mapErr("check journal", journal, err)
	}
	f, err := openPartFile(data, os.O_RDONLY) // gone, or no longer a regular file: lost
	if err != nil {
		return "", err
	}
	f.Close()
	abs, err := filepath.Abs(data)
	if err != nil {
		return "", fmt.Errorf("local: part file: %w", err)
	}
	return abs, nil
}

// RecordPart implements sdk.PartFiles: it records part p, which the host wrote into the
// data file and synced, as PutPart does after writing it (see package partfile).
func (s *Store) RecordPart(ctx context.Context, handle []byte, p sdk.PartInfo) ([]byte, error) {
	op, err := s.startPart(ctx, handle, p, "record")
	if err != nil {
		return nil, err
	}
	defer op.done()
	ctx, h, data, j, journal := op.ctx, op.h, op.data, op.journal, op.journalPath
	part, err := partfile.StartPart(journalFile{j}, h, p)
	if err != nil {
		return nil, mapErr("start part of", data, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: record part %d of %s: %w", p.Number, h.Key, err)
	}
	part.Adopt()
	receipt, err := part.Finish()
	if err != nil {
		return nil, mapErr("record part in", journal, err)
	}
	return receipt, nil
}
