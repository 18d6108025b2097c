package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// RunPartFiles runs the part-wise cases over a gRPC connection for a backend with
// sdk.PartFiles, storing parts as the host does then: the first time a part of an object
// is sent, the bytes are written into the object's part file at the part's offset
// (pluginhost.Remote.OpenPartFile), synced and recorded with RecordPart; a part sent again
// once it has a receipt goes through PutPart. It adds the cases only part files have: the
// file's identity, a part recorded in place replacing one sent with PutPart, unknown and
// aborted handles, and the part file of a plugin that restarted.
func RunPartFiles(t *testing.T, o Options) {
	t.Helper()
	checkOptions(t, o)
	runParts(t, o, func(t *testing.T, u func(string)) { grpcPartSupport(t, o, u) },
		func(t *testing.T, st sdk.Storage) *partEnv { return openPartFileParts(t, o, st, &partFileBook{}) },
		append(partCases(), partFileCases()...))
}

// openPartFileParts returns the env of a case run over a plugin connection whose parts are
// written into the part file (see RunPartFiles). The book outlives a restart, as the
// host's database does.
func openPartFileParts(t *testing.T, o Options, st sdk.Storage, book *partFileBook) *partEnv {
	t.Helper()
	if _, ok := st.(sdk.PartFiles); !ok {
		t.Skip("the Storage does not implement sdk.PartFiles")
	}
	return openWireParts(t, o, st, false, func(t *testing.T, w *wire) pluginhost.Remote {
		if !w.info.PartFiles {
			t.Fatal("the Storage implements sdk.PartFiles but Configure did not announce part files")
		}
		return &partFileRemote{Remote: w.remote, book: book}
	})
}

// partFileRemote is a Remote whose PutPart writes a part into the part file itself and
// records it, as the host does, unless the part has a receipt already.
type partFileRemote struct {
	pluginhost.Remote
	book *partFileBook
}

// partFileBook is what the host keeps of part-wise objects: their specs, and which parts
// have a receipt.
type partFileBook struct {
	mu        sync.Mutex
	specs     map[string]sdk.ObjectSpec // by handle
	receipted map[string]bool           // by handle and part number
}

func (b *partFileBook) lookup(handle []byte, n int) (spec sdk.ObjectSpec, known, receipted bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	spec, known = b.specs[string(handle)]
	return spec, known, b.receipted[fmt.Sprintf("%x/%d", handle, n)]
}

func (b *partFileBook) began(handle []byte, spec sdk.ObjectSpec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.specs == nil {
		b.specs, b.receipted = map[string]sdk.ObjectSpec{}, map[string]bool{}
	}
	b.specs[string(handle)] = spec
}

func (b *partFileBook) stored(handle []byte, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.receipted != nil {
		b.receipted[fmt.Sprintf("%x/%d", handle, n)] = true
	}
}

func (p *partFileRemote) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	h, err := p.Remote.BeginObject(ctx, key, spec)
	if err == nil {
		p.book.began(h, spec)
	}
	return h, err
}

// PutPart writes the part in the part file the first time, as the host does: a part of
// the object (its number and size are the object's, which the host checks before it writes
// a byte) without a receipt yet. Anything else, and handles this host never began, go
// through PutPart.
func (p *partFileRemote) PutPart(ctx context.Context, handle []byte, info sdk.PartInfo, r io.Reader) ([]byte, error) {
	spec, known, again := p.book.lookup(handle, info.Number)
	inPlace := known && !again && info.Number >= 0 && info.Number < spec.PartCount && info.Size == spec.PartSizeOf(info.Number)
	var receipt []byte
	var err error
	if inPlace {
		receipt, err = writeInPartFile(ctx, p.Remote, handle, spec.PartSize, info, r)
	} else {
		receipt, err = p.Remote.PutPart(ctx, handle, info, r)
	}
	if err == nil {
		p.book.stored(handle, info.Number)
	}
	return receipt, err
}

// writeInPartFile writes part info from r into the part file of handle, whose parts are
// partSize bytes, refusing what the host refuses (a reader that is short, long or does not
// hash to info.SHA256) without recording it, and records it.
func writeInPartFile(ctx context.Context, remote pluginhost.Remote, handle []byte, partSize int64, info sdk.PartInfo, r io.Reader) ([]byte, error) {
	f, err := remote.OpenPartFile(ctx, handle, os.O_WRONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Never a byte past the part's end, which is the next part's beginning.
	sum, err := sdk.CopyExact(io.NewOffsetWriter(f, int64(info.Number)*partSize), io.LimitReader(r, info.Size), info.Size)
	if err != nil {
		return nil, err
	}
	if n, err := r.Read(make([]byte, 1)); n > 0 || (err != nil && err != io.EOF) {
		return nil, fmt.Errorf("%w: part %d is longer than %d bytes (or its reader failed: %v)", sdk.ErrSizeMismatch, info.Number, info.Size, err)
	}
	if !bytes.Equal(sum, info.SHA256) {
		return nil, fmt.Errorf("%w: part %d has sha256 %x, not %x", sdk.ErrDigestMismatch, info.Number, sum, info.SHA256)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return remote.RecordPart(ctx, handle, info)
}

// partFileCases are the cases only part files have.
func partFileCases() []partCase {
	return []partCase{
		{"PartFileHandles", testPartFileHandles},
		{"PartFileReplacesPut", testPartFileReplacesPut},
		{"PartFileAfterRestart", testPartFileAfterRestart},
	}
}

// testPartFileHandles: the part file of a begun object opens (for writing and reading, as
// the file the plugin named, of the object's size); an unknown handle, or one aborted,
// gives ErrNotFound to OpenPartFile and RecordPart, and RecordPart then leaves nothing.
func testPartFileHandles(t *testing.T, e *partEnv) {
	remote := e.wire.remote
	o := e.object("partfile-handles/object.bin", "partfile-handles", 2)
	h := e.begin(t, o)
	for _, flag := range []int{os.O_WRONLY, os.O_RDONLY} {
		f, err := remote.OpenPartFile(e.ctx, h, flag)
		if err != nil {
			t.Fatalf("OpenPartFile(flag %d) of a begun object: %v", flag, err)
		}
		// The host writes in place only into a file of the object's size (sdk.PartFiles).
		fi, err := f.Stat()
		f.Close()
		if err != nil || fi.Size() != o.spec.Size {
			t.Fatalf("the part file of a begun object has %v bytes (%v), want the object's %d from BeginObject on",
				sizeOf(fi), err, o.spec.Size)
		}
	}
	e.abort(t, o, h)
	for what, handle := range map[string][]byte{"aborted": h, "unknown": []byte("not a handle of this backend")} {
		_, err := remote.OpenPartFile(e.ctx, handle, os.O_RDONLY)
		wantErr(t, "OpenPartFile of an "+what+" handle", err, sdk.ErrNotFound)
		_, err = remote.RecordPart(e.ctx, handle, o.info(0))
		wantErr(t, "RecordPart of an "+what+" handle", err, sdk.ErrNotFound)
	}
	e.checkClean(t)
}

// testPartFileReplacesPut: a part sent with PutPart and then written in the part file and
// recorded again has a new receipt; the first one is stale at commit, the new one commits
// the object with the bytes written in place.
func testPartFileReplacesPut(t *testing.T, e *partEnv) {
	remote := e.wire.remote
	o := e.object("partfile-replaces/object.bin", "partfile-replaces", 2)
	h := e.begin(t, o)
	first, err := remote.PutPart(e.ctx, h, o.info(0), bytes.NewReader(o.part(0)))
	if err != nil {
		t.Fatalf("PutPart of part 0: %v", err)
	}
	second, err := writeInPartFile(e.ctx, remote, h, o.spec.PartSize, o.info(0), bytes.NewReader(o.part(0)))
	if err != nil {
		t.Fatalf("part 0 written in the part file: %v", err)
	}
	last, err := writeInPartFile(e.ctx, remote, h, o.spec.PartSize, o.info(1), bytes.NewReader(o.part(1)))
	if err != nil {
		t.Fatalf("part 1 written in the part file: %v", err)
	}
	if bytes.Equal(first, second) {
		t.Errorf("RecordPart of part 0 returned the receipt PutPart had returned")
	}
	_, err = remote.CommitObject(e.ctx, h, [][]byte{first, last}, o.sum)
	wantErr(t, "CommitObject with the receipt of the part PutPart sent before it was recorded again", err, sdk.ErrStaleReceipt)
	e.commit(t, h, o, [][]byte{second, last})
	e.checkClean(t)
}

// testPartFileAfterRestart: parts written in the part file before and after the plugin
// restarted make the object.
func testPartFileAfterRestart(t *testing.T, e *partEnv) {
	if e.restart == nil {
		t.Skip("Options.Reopen is not set")
	}
	o := e.object("partfile-restart/object.bin", "partfile-restart", 3)
	h := e.begin(t, o)
	rs := [][]byte{e.putPart(t, h, o, 0), nil, nil}
	e = e.restart(t)
	rs[2] = e.putPart(t, h, o, 2)
	rs[1] = e.putPart(t, h, o, 1)
	e.commit(t, h, o, rs)
	e.checkClean(t)
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}
