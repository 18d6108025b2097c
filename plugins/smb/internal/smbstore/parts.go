package smbstore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"

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
