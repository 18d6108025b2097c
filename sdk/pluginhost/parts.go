package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	storagev1 "github.com/chunked-uploader/chunked-uploader/proto/storage/v1"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// PartLimits implements PartStorage: the limits the plugin announced when configured.
func (c *grpcClient) PartLimits() sdk.PartLimits {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parts
}

func (c *grpcClient) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	resp, err := c.client.BeginObject(ctx, &storagev1.BeginObjectRequest{
		Key: key, Size: spec.Size, PartSize: spec.PartSize, PartCount: int64(spec.PartCount), Sha256: spec.SHA256,
	})
	if err != nil {
		return nil, fmt.Errorf("begin object %s: %w", key, sdk.FromStatus(err))
	}
	return resp.GetHandle(), nil
}

// PutPart streams exactly p.Size bytes of r to the plugin. It does not hash them: by the
// contract of PutPart the plugin checks them against p.SHA256 and refuses the part
// (DATA_LOSS, ErrDigestMismatch here) when they differ, so a second SHA-256 pass in the
// host would only say which side is wrong, which the host finds out by reading its copy
// again (it checks its staged copies with cheaper means as it reads them).
func (c *grpcClient) PutPart(ctx context.Context, handle []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the stream on every early return
	stream, err := c.client.PutPart(ctx)
	if err != nil {
		return nil, fmt.Errorf("put part %d: %w", p.Number, sdk.FromStatus(err))
	}
	fail := func(err error) ([]byte, error) {
		if errors.Is(err, io.EOF) {
			if _, rerr := stream.CloseAndRecv(); rerr != nil {
				err = rerr
			}
		}
		return nil, fmt.Errorf("put part %d: %w", p.Number, sdk.FromStatus(err))
	}
	h := &storagev1.PutPartHeader{Handle: handle, PartNumber: int64(p.Number), Size: p.Size, Sha256: p.SHA256}
	hdr := &storagev1.PutPartRequest{Msg: &storagev1.PutPartRequest_Header{Header: h}}
	fin := &storagev1.PutPartRequest{Msg: &storagev1.PutPartRequest_Finish{Finish: &storagev1.PutFinish{Sha256: p.SHA256}}}
	if sp, ok := r.(*StagedPart); ok && c.readsStaged(sp.Path) {
		receipt, err := c.putStaged(stream, hdr, fin, sp)
		if !errors.Is(err, sdk.ErrDigestMismatch) && !errors.Is(err, sdk.ErrSizeMismatch) {
			return receipt, err
		}
		// The plugin refused the file (it could not open it, or its bytes were not the
		// part's): send the bytes instead, read by the host from its own open copy, so that a
		// plugin that lost sight of the staging directory never blocks a delivery. A copy
		// that really is damaged fails the host's own check on the way.
		return c.PutPart(ctx, handle, p, sp.Reader)
	}
	if err := stream.Send(hdr); err != nil {
		return fail(err)
	}
	msg := &storagev1.PutPartRequest_Chunk{}
	req := &storagev1.PutPartRequest{Msg: msg}
	_, err = sendChunks(func(b []byte) error { msg.Chunk = b; return stream.Send(req) }, r, p.Size, nil)
	if err != nil {
		var se *sendError
		if errors.As(err, &se) {
			return fail(se.err)
		}
		_, _ = stream.CloseAndRecv()
		return nil, fmt.Errorf("put part %d: %w", p.Number, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("put part %d: %w", p.Number, err)
	}
	if err := stream.Send(fin); err != nil {
		return fail(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("put part %d: %w", p.Number, sdk.FromStatus(err))
	}
	return resp.GetReceipt(), nil
}

func (c *grpcClient) CommitObject(ctx context.Context, handle []byte, receipts [][]byte, sha256 []byte) (sdk.Object, error) {
	resp, err := c.client.CommitObject(ctx, &storagev1.CommitObjectRequest{Handle: handle, Receipts: receipts, Sha256: sha256})
	if err != nil {
		return sdk.Object{}, fmt.Errorf("commit object: %w", sdk.FromStatus(err))
	}
	return objectFromProto(resp.GetObject()), nil
}

func (c *grpcClient) AbortObject(ctx context.Context, key string, handle []byte) error {
	if _, err := c.client.AbortObject(ctx, &storagev1.AbortObjectRequest{Key: key, Handle: handle}); err != nil {
		return fmt.Errorf("abort object %s: %w", key, sdk.FromStatus(err))
	}
	return nil
}

// StagedPart is a reader of a staged part file, for PutPart: a plugin that reads staged
// parts (PluginInfo.StagedReads) is sent Path instead of the bytes and checks the file
// against CRC32C; any other plugin is sent the bytes read from Reader, as usual. Path must
// be a file under the staging directory given to ConfigureWithStaging, holding exactly the
// part's bytes, and it must not change until PutPart returned (a staged part is replaced
// by a new file, never rewritten in place). When the plugin refuses the file (DATA_LOSS:
// it cannot open it, or its size or CRC-32C differ), the same PutPart sends the bytes of
// Reader instead.
type StagedPart struct {
	io.Reader
	Path   string
	CRC32C uint32
}

// readsStaged tells whether the plugin reads path itself.
func (c *grpcClient) readsStaged(path string) bool {
	c.mu.Lock()
	dir := c.staged
	c.mu.Unlock()
	return sdk.InDir(dir, path)
}

// putStaged sends a PutPart that names sp's file, on stream, and returns its answer.
func (c *grpcClient) putStaged(stream storagev1.StorageService_PutPartClient, hdr, fin *storagev1.PutPartRequest, sp *StagedPart) ([]byte, error) {
	h := hdr.GetHeader()
	h.StagedPath, h.StagedCrc32C = sp.Path, sp.CRC32C
	err := stream.Send(hdr)
	if err == nil {
		err = stream.Send(fin)
	}
	resp, rerr := stream.CloseAndRecv()
	if err == nil || errors.Is(err, io.EOF) {
		err = rerr // a failed Send shows its cause in the answer
	}
	if err != nil {
		return nil, fmt.Errorf("put staged part %d: %w", h.GetPartNumber(), sdk.FromStatus(err))
	}
	return resp.GetReceipt(), nil
}

func (c *grpcClient) OpenPartFile(ctx context.Context, handle []byte, flag int) (*os.File, error) {
	c.mu.Lock()
	files := c.files
	c.mu.Unlock()
	if !files {
		return nil, fmt.Errorf("part file: %w: the plugin has no part files", sdk.ErrNotSupported)
	}
	resp, err := c.client.PartFile(ctx, &storagev1.PartFileRequest{Handle: handle})
	if err != nil {
		return nil, fmt.Errorf("part file: %w", sdk.FromStatus(err))
	}
	path := resp.GetPath()
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("part file: %w: the plugin named %q, not an absolute path", sdk.ErrNotSupported, path)
	}
	f, err := os.OpenFile(path, (flag&(os.O_RDONLY|os.O_WRONLY|os.O_RDWR))|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP):
		// Gone, or a symbolic link put in its place since the plugin looked: the
		// object's file is lost.
		return nil, fmt.Errorf("part file: %w: %w", sdk.ErrNotFound, err)
	case err != nil:
		return nil, fmt.Errorf("part file: %w", err) // passing (EMFILE) or not: no verdict on the file
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("part file: %w", err)
	}
	if !sdk.SoleName(fi) { // a hard link put in its place since the plugin looked
		f.Close()
		return nil, fmt.Errorf("part file: %w: %s has other names", sdk.ErrNotFound, path)
	}
	dev, ino, ok := sdk.FileID(fi)
	if !ok || !fi.Mode().IsRegular() || dev != resp.GetDevice() || ino != resp.GetInode() {
		f.Close()
		return nil, fmt.Errorf("part file: %w: %s is not the plugin's file here (device %d inode %d, the plugin's %d and %d)",
			sdk.ErrNotSupported, path, dev, ino, resp.GetDevice(), resp.GetInode())
	}
	return f, nil
}

func (c *grpcClient) RecordPart(ctx context.Context, handle []byte, p sdk.PartInfo) ([]byte, error) {
	resp, err := c.client.RecordPart(ctx, &storagev1.RecordPartRequest{
		Handle: handle, PartNumber: int64(p.Number), Size: p.Size, Sha256: p.SHA256,
	})
	if err != nil {
		return nil, fmt.Errorf("record part %d: %w", p.Number, sdk.FromStatus(err))
	}
	if len(resp.GetReceipt()) == 0 {
		return nil, fmt.Errorf("record part %d: the plugin returned no receipt", p.Number)
	}
	return resp.GetReceipt(), nil
}
