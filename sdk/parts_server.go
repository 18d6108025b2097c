package sdk

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"

	storagev1 "github.com/chunked-uploader/chunked-uploader/proto/storage/v1"
)

// partStorage returns the configured backend as a PartStorage, or the UNIMPLEMENTED
// status a plugin without part-wise storage answers.
func (s *grpcServer) partStorage() (PartStorage, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	ps, ok := st.(PartStorage)
	if !ok {
		return nil, ToStatus(fmt.Errorf("%w: this backend stores objects whole only", ErrNotSupported))
	}
	return ps, nil
}

func checkHandle(h []byte) error {
	if len(h) == 0 || len(h) > MaxHandleSize {
		return fmt.Errorf("%w: handle of %d bytes", ErrNotFound, len(h))
	}
	return nil
}

func (s *grpcServer) BeginObject(ctx context.Context, req *storagev1.BeginObjectRequest) (*storagev1.BeginObjectResponse, error) {
	ps, err := s.partStorage()
	if err != nil {
		return nil, err
	}
	if err := ValidKey(req.GetKey()); err != nil {
		return nil, ToStatus(err)
	}
	spec := ObjectSpec{Size: req.GetSize(), PartSize: req.GetPartSize(), PartCount: int(req.GetPartCount()), SHA256: req.GetSha256()}
	if len(spec.SHA256) == 0 {
		spec.SHA256 = nil
	}
	if err := spec.Check(); err != nil {
		return nil, ToStatus(err)
	}
	if !ps.PartLimits().Allows(spec) {
		return nil, ToStatus(fmt.Errorf("%w: %d parts of %d bytes are outside this backend's limits", ErrNotSupported, spec.PartCount, spec.PartSize))
	}
	h, err := ps.BeginObject(ctx, req.GetKey(), spec)
	if err == nil && (len(h) == 0 || len(h) > MaxHandleSize) {
		err = fmt.Errorf("backend returned a handle of %d bytes (1 to %d allowed)", len(h), MaxHandleSize)
	}
	if err != nil {
		return nil, ToStatus(err)
	}
	return &storagev1.BeginObjectResponse{Handle: h}, nil
}

func (s *grpcServer) PutPart(stream storagev1.StorageService_PutPartServer) error {
	ps, err := s.partStorage()
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return ToStatus(fmt.Errorf("%w: the first PutPart message must be a header", ErrInvalidKey))
	}
	if err := checkHandle(hdr.GetHandle()); err != nil {
		return ToStatus(err)
	}
	if hdr.GetSize() < 0 || hdr.GetPartNumber() < 0 || len(hdr.GetSha256()) != sha256.Size {
		return ToStatus(fmt.Errorf("%w: part %d of %d bytes with a %d-byte sha256", ErrSizeMismatch,
			hdr.GetPartNumber(), hdr.GetSize(), len(hdr.GetSha256())))
	}
	p := PartInfo{Number: int(hdr.GetPartNumber()), Size: hdr.GetSize(), SHA256: hdr.GetSha256()}
	if hdr.GetStagedPath() != "" {
		return s.putStagedPart(stream, ps, hdr, p)
	}
	r := &streamReader{recv: partStream(stream), size: p.Size, want: p.SHA256, hash: sha256.New()}
	receipt, err := ps.PutPart(stream.Context(), hdr.GetHandle(), p, r)
	return s.answerPart(stream, p, receipt, err, r.finished, r.err, "stream")
}

// answerPart answers a PutPart whose backend call returned receipt and err after reading
// from the sdk's reader of the part (of kind what), which reached its verified end if
// finished and failed with rerr, if not nil. A backend that returned without reading to
// the verified end gets no receipt: its part cannot count.
func (s *grpcServer) answerPart(stream storagev1.StorageService_PutPartServer, p PartInfo, receipt []byte, err error, finished bool, rerr error, what string) error {
	if err == nil && !finished {
		err = fmt.Errorf("%w: backend returned before the end of the part's %s", ErrSizeMismatch, what)
	}
	if err == nil && (len(receipt) == 0 || len(receipt) > MaxReceiptSize) {
		err = fmt.Errorf("backend returned a receipt of %d bytes (1 to %d allowed)", len(receipt), MaxReceiptSize)
	}
	if err != nil {
		if rerr != nil && !errors.Is(err, rerr) {
			err = fmt.Errorf("%w (%s: %w)", err, what, rerr)
		}
		s.log.Debug("put part failed", "part", p.Number, "from", what, "error", err)
		return ToStatus(err)
	}
	return stream.SendAndClose(&storagev1.PutPartResponse{Receipt: receipt})
}

// putStagedPart stores a part that the plugin reads from the host's staging file (see
// WithStagedReads): the stream holds only the PutFinish after the header.
func (s *grpcServer) putStagedPart(stream storagev1.StorageService_PutPartServer, ps PartStorage, hdr *storagev1.PutPartHeader, p PartInfo) error {
	msg, err := stream.Recv()
	if err != nil {
		return err
	}
	if msg.GetFinish() == nil {
		return ToStatus(fmt.Errorf("%w: a staged part's header must be followed by its finish, not %T", ErrSizeMismatch, msg.GetMsg()))
	}
	r, err := s.openStaged(hdr.GetStagedPath(), p.Size, hdr.GetStagedCrc32C(), p.SHA256)
	if err != nil {
		s.log.Warn("staged part refused", "part", p.Number, "error", err)
		// The backend still sees the attempt, as a stream that breaks at once, so that the
		// part is absent afterwards whichever way it was refused.
		if _, perr := ps.PutPart(stream.Context(), hdr.GetHandle(), p, failingReader{err}); perr != nil && !errors.Is(perr, err) {
			err = fmt.Errorf("%w (backend: %w)", err, perr)
		}
		return ToStatus(err)
	}
	defer r.Close()
	receipt, err := ps.PutPart(stream.Context(), hdr.GetHandle(), p, r)
	return s.answerPart(stream, p, receipt, err, r.finished, r.err, "staged file")
}

func (s *grpcServer) CommitObject(ctx context.Context, req *storagev1.CommitObjectRequest) (*storagev1.CommitObjectResponse, error) {
	ps, err := s.partStorage()
	if err != nil {
		return nil, err
	}
	if err := checkHandle(req.GetHandle()); err != nil {
		return nil, ToStatus(err)
	}
	for i, r := range req.GetReceipts() {
		if len(r) == 0 || len(r) > MaxReceiptSize {
			return nil, ToStatus(fmt.Errorf("%w: receipt of part %d has %d bytes", ErrStaleReceipt, i, len(r)))
		}
	}
	if len(req.GetSha256()) != sha256.Size {
		return nil, ToStatus(fmt.Errorf("%w: object sha256 of %d bytes", ErrDigestMismatch, len(req.GetSha256())))
	}
	obj, err := ps.CommitObject(ctx, req.GetHandle(), req.GetReceipts(), req.GetSha256())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &storagev1.CommitObjectResponse{Object: objectToProto(obj)}, nil
}

func (s *grpcServer) AbortObject(ctx context.Context, req *storagev1.AbortObjectRequest) (*storagev1.AbortObjectResponse, error) {
	ps, err := s.partStorage()
	if err != nil {
		return nil, err
	}
	if err := ValidKey(req.GetKey()); err != nil {
		return nil, ToStatus(err)
	}
	var h []byte
	if len(req.GetHandle()) > 0 {
		if err := checkHandle(req.GetHandle()); err != nil {
			return nil, ToStatus(err)
		}
		h = req.GetHandle()
	}
	if err := ps.AbortObject(ctx, req.GetKey(), h); err != nil {
		return nil, ToStatus(err)
	}
	return &storagev1.AbortObjectResponse{}, nil
}

// failingReader fails every read with err.
type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// partFiles returns the configured backend as PartFiles, or the UNIMPLEMENTED status.
func (s *grpcServer) partFiles() (PartFiles, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	pf, ok := st.(PartFiles)
	if !ok {
		return nil, ToStatus(fmt.Errorf("%w: this backend takes parts through PutPart only", ErrNotSupported))
	}
	return pf, nil
}

func (s *grpcServer) PartFile(ctx context.Context, req *storagev1.PartFileRequest) (*storagev1.PartFileResponse, error) {
	pf, err := s.partFiles()
	if err != nil {
		return nil, err
	}
	if err := checkHandle(req.GetHandle()); err != nil {
		return nil, ToStatus(err)
	}
	path, err := pf.PartFile(ctx, req.GetHandle())
	if err != nil {
		return nil, ToStatus(err)
	}
	dev, ino, err := fileID(path)
	if err != nil {
		return nil, ToStatus(fmt.Errorf("part file of the object: %w", err))
	}
	return &storagev1.PartFileResponse{Path: path, Device: dev, Inode: ino}, nil
}

func (s *grpcServer) RecordPart(ctx context.Context, req *storagev1.RecordPartRequest) (*storagev1.PutPartResponse, error) {
	pf, err := s.partFiles()
	if err != nil {
		return nil, err
	}
	if err := checkHandle(req.GetHandle()); err != nil {
		return nil, ToStatus(err)
	}
	if req.GetSize() < 0 || req.GetPartNumber() < 0 || len(req.GetSha256()) != sha256.Size {
		return nil, ToStatus(fmt.Errorf("%w: part %d of %d bytes with a %d-byte sha256", ErrSizeMismatch,
			req.GetPartNumber(), req.GetSize(), len(req.GetSha256())))
	}
	p := PartInfo{Number: int(req.GetPartNumber()), Size: req.GetSize(), SHA256: req.GetSha256()}
	receipt, err := pf.RecordPart(ctx, req.GetHandle(), p)
	if err == nil && (len(receipt) == 0 || len(receipt) > MaxReceiptSize) {
		err = fmt.Errorf("backend returned a receipt of %d bytes (1 to %d allowed)", len(receipt), MaxReceiptSize)
	}
	if err != nil {
		return nil, ToStatus(err)
	}
	return &storagev1.PutPartResponse{Receipt: receipt}, nil
}

// fileID returns the device and inode numbers of the regular file at path. A path that is
// gone, or no longer a regular file with that one name (a symbolic or hard link put in its
// place), is ErrNotFound: the object's file is lost, and the host starts the object again.
func fileID(path string) (dev, ino uint64, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return 0, 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, 0, fmt.Errorf("%w: %s is not a regular file (%s)", ErrNotFound, path, fi.Mode().Type())
	}
	if !SoleName(fi) {
		return 0, 0, fmt.Errorf("%w: %s has other names (a hard link put in its place)", ErrNotFound, path)
	}
	dev, ino, ok := FileID(fi)
	if !ok {
		return 0, 0, fmt.Errorf("%w: no file identity on this system", ErrNotSupported)
	}
	return dev, ino, nil
}
